//! The WebSocket gateway, through real WebSocket clients on a real server.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{code, TestApp, WsClient};

/// A public room owned by `owner_token`'s user that each of `members` joins.
async fn room_with(app: &TestApp, owner_token: &str, name: &str, members: &[&str]) -> String {
    let room = app.room(owner_token, name, "public").await;
    for t in members {
        let (s, b) = app
            .call("POST", &format!("/api/v1/rooms/{room}/join"), Some(t), None)
            .await;
        assert_eq!(s, 200, "{b}");
    }
    room
}

/// Registers `names`; the first owns a public room "Lobby" that the others join.
async fn lobby<const N: usize>(app: &TestApp, names: [&str; N]) -> (String, [String; N]) {
    let mut tokens = Vec::new();
    for name in names {
        tokens.push(app.user(name).await);
    }
    let others: Vec<&str> = tokens[1..].iter().map(String::as_str).collect();
    let room = room_with(app, &tokens[0], "Lobby", &others).await;
    (room, tokens.try_into().expect("N tokens"))
}

/// A socket for `token`, subscribed to `room` from now on.
async fn subscribed(app: &TestApp, token: &str, room: &str) -> WsClient {
    let mut ws = app.ws(token).await;
    ws.subscribe(room, None).await;
    ws
}

/// Sends a message over the socket and returns its `ack`.
async fn send(ws: &mut WsClient, room: &str, body: &str, cmid: &str) -> Value {
    let ack = ws
        .request(
            json!({"type": "send", "room_id": room, "body": body, "client_msg_id": cmid}),
            cmid,
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ack
}

/// The next `count` message frames of `room`, as (seq, body).
async fn messages(ws: &mut WsClient, room: &str, count: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    while out.len() < count {
        let f = ws.next_of("message").await;
        assert_eq!(f["room_id"], room, "{f}");
        out.push((
            f["seq"].as_i64().unwrap(),
            f["body"].as_str().unwrap_or_default().to_string(),
        ));
    }
    out
}

#[tokio::test]
async fn hello_names_the_user_protocol_and_heartbeat() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let ws = app.ws(&alice).await;
    assert_eq!(ws.hello["protocol"], 1);
    assert_eq!(ws.hello["user"]["username"], "alice");
    assert_eq!(ws.hello["heartbeat_secs"], app.config.ws.heartbeat_secs);
    assert!(
        ws.hello["session_id"].is_string() && ws.hello["connection_id"].is_u64(),
        "{}",
        ws.hello
    );
}

#[tokio::test]
async fn two_users_chat_both_ways_and_rest_posts_reach_sockets() {
    let app = TestApp::spawn().await;
    let (room, [alice, bob]) = lobby(&app, ["alice", "bob"]).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    assert_eq!(a.subscribe(&room, None).await["last_seq"], 0);
    b.subscribe(&room, None).await;

    let ack = send(&mut a, &room, "hi bob", "a-1").await;
    assert_eq!(
        (ack["message"]["seq"].as_i64(), ack["duplicate"].as_bool()),
        (Some(1), Some(false))
    );
    let m = b.next_of("message").await;
    assert_eq!(
        (m["seq"].as_i64(), m["author"].as_str(), m["body"].as_str()),
        (Some(1), Some("alice"), Some("hi bob"))
    );
    assert_eq!(m["id"], ack["message"]["id"]);
    // (The sender's own subscription got it too, before the ack, which `send` skipped past.)

    send(&mut b, &room, "hi alice", "b-1").await;
    assert_eq!(messages(&mut a, &room, 1).await, vec![(2, "hi alice".to_string())]);

    // One message service: a REST post is delivered to the sockets like any other.
    app.say(&alice, &room, "over REST").await;
    // (bob's own message reached his subscription while he waited for its ack.)
    assert_eq!(messages(&mut b, &room, 1).await, vec![(3, "over REST".to_string())]);
    // And a socket message is in the REST history.
    let (_, page) = app
        .call(
            "GET",
            &format!("/api/v1/rooms/{room}/messages?after=0"),
            Some(&bob),
            None,
        )
        .await;
    let bodies: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["hi bob", "hi alice", "over REST"]);
}

#[tokio::test]
async fn a_resend_with_the_same_client_msg_id_is_acked_again_and_stored_once() {
    let app = TestApp::spawn().await;
    let (room, [alice]) = lobby(&app, ["alice"]).await;
    let mut a = app.ws(&alice).await;
    let first = send(&mut a, &room, "once", "same-id").await;
    let again = send(&mut a, &room, "once", "same-id").await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message"], first["message"]);
    let (_, r) = app
        .call("GET", &format!("/api/v1/rooms/{room}"), Some(&alice), None)
        .await;
    assert_eq!(r["last_seq"], 1);
}

#[tokio::test]
async fn resume_since_seq_replays_exactly_the_missed_then_continues_live() {
    let app = TestApp::spawn().await;
    let (room, [alice, bob]) = lobby(&app, ["alice", "bob"]).await;
    let mut b = subscribed(&app, &bob, &room).await;
    app.say(&alice, &room, "before").await;
    let seen = messages(&mut b, &room, 1).await[0].0;
    drop(b);

    for i in 0..50 {
        app.say(&alice, &room, &format!("missed {i}")).await;
    }
    let mut b = app.ws(&bob).await;
    let sub = b.subscribe(&room, Some(seen)).await;
    assert_eq!(
        (sub["since_seq"].as_i64(), sub["last_seq"].as_i64()),
        (Some(1), Some(51))
    );
    let got = messages(&mut b, &room, 50).await;
    let want: Vec<(i64, String)> = (0..50).map(|i| (i + 2, format!("missed {i}"))).collect();
    assert_eq!(got, want);
    // Live continues right after, and nothing from the replay repeats.
    app.say(&alice, &room, "live").await;
    assert_eq!(messages(&mut b, &room, 1).await, vec![(52, "live".to_string())]);
}

#[tokio::test]
async fn replay_during_a_flood_has_no_gap_and_no_duplicate() {
    let app = TestApp::spawn().await;
    let (room, [alice, bob]) = lobby(&app, ["alice", "bob"]).await;
    for i in 0..100 {
        app.say(&alice, &room, &format!("old {i}")).await;
    }
    // Messages keep arriving while bob's replay of the first 100 runs.
    let mut sender = app.ws(&alice).await;
    let room2 = room.clone();
    let flood = tokio::spawn(async move {
        for i in 0..150 {
            send(&mut sender, &room2, &format!("new {i}"), &format!("n{i}")).await;
        }
    });
    let mut b = app.ws(&bob).await;
    b.subscribe(&room, Some(0)).await;
    flood.await.unwrap();
    let seqs: Vec<i64> = messages(&mut b, &room, 250).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(seqs, (1..=250).collect::<Vec<_>>());
}

#[tokio::test]
async fn concurrent_senders_every_subscriber_sees_the_same_gapless_order() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let mut senders = Vec::new();
    for i in 0..10 {
        senders.push(app.user(&format!("sender{i}")).await);
    }
    let readers = [
        app.user("reader0").await,
        app.user("reader1").await,
        app.user("reader2").await,
    ];
    let joiners: Vec<&str> = senders.iter().chain(readers.iter()).map(String::as_str).collect();
    let room = room_with(&app, &owner, "Busy", &joiners).await;
    let mut subs = Vec::new();
    for r in &readers {
        let mut ws = app.ws(r).await;
        ws.subscribe(&room, None).await;
        subs.push(ws);
    }
    let mut tasks = Vec::new();
    for (i, token) in senders.iter().enumerate() {
        let mut ws = app.ws(token).await;
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..100 {
                send(&mut ws, &room, &format!("{i}:{n}"), &format!("{i}-{n}")).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut orders = Vec::new();
    for ws in &mut subs {
        let got = messages(ws, &room, 1000).await;
        let seqs: Vec<i64> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (1..=1000).collect::<Vec<_>>(), "gapless, in order, once");
        // Each sender's messages appear in the order it sent them.
        let mut last: HashMap<&str, i64> = HashMap::new();
        for (_, body) in &got {
            let (who, n) = body.split_once(':').unwrap();
            let n: i64 = n.parse().unwrap();
            assert!(last.insert(who, n).is_none_or(|prev| prev < n), "{body}");
        }
        orders.push(got);
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "every subscriber saw the same order"
    );
}

#[tokio::test]
async fn a_paused_reader_is_closed_as_slow_while_the_others_receive_everything() {
    let app = TestApp::spawn_with(|c| c.ws.outbound_queue = 16).await;
    let (room, [alice, bob, carol]) = lobby(&app, ["alice", "bob", "carol"]).await;
    // Bob's client stops reading; its (small) socket buffers fill, then its queue.
    let mut slow = app.ws_small_buffer(&bob).await;
    slow.subscribe(&room, None).await;
    let mut fast = subscribed(&app, &carol, &room).await;
    // 16 kB per frame (4,000 four-byte characters): megabytes queue up within a second.
    let big = "\u{1F600}".repeat(4000);
    let mut sender = app.ws(&alice).await;
    let total = 500;
    let room_for_fast = room.clone();
    let fast_task = tokio::spawn(async move { messages(&mut fast, &room_for_fast, total).await });
    for i in 0..total {
        send(&mut sender, &room, &big, &format!("m{i}")).await;
    }
    let got = fast_task.await.unwrap();
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=total as i64).collect::<Vec<_>>()
    );
    // Now bob reads: what was already on the wire, then the close.
    assert_eq!(slow.closed().await, (4008, "slow_consumer".to_string()));
    // He resumes from the last seq he saw and loses nothing.
    let mut again = app.ws(&bob).await;
    again.subscribe(&room, Some(0)).await;
    let seqs: Vec<i64> = messages(&mut again, &room, total)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_stays_open() {
    let app = TestApp::spawn().await;
    let (room, [alice]) = lobby(&app, ["alice"]).await;
    let mut a = app.ws(&alice).await;
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "invalid_json"),
        ("[1,2]".into(), "invalid_frame"),
        (r#"{"room_id":"x"}"#.into(), "invalid_frame"),
        (r#"{"type":"dance"}"#.into(), "unknown_type"),
        (r#"{"type":"subscribe"}"#.into(), "invalid_frame"),
        (r#"{"type":"subscribe","room_id":"nope"}"#.into(), "room_not_found"),
        (
            format!(r#"{{"type":"subscribe","room_id":"{room}","since_seq":-1}}"#),
            "invalid_seq",
        ),
        (
            format!(r#"{{"type":"subscribe","room_id":"{room}","since_seq":99}}"#),
            "invalid_seq",
        ),
        (
            format!(r#"{{"type":"send","room_id":"{room}","body":"x"}}"#),
            "invalid_frame",
        ),
        (
            format!(r#"{{"type":"send","room_id":"{room}","body":"","client_msg_id":"c1"}}"#),
            "invalid_message",
        ),
        (format!(r#"{{"type":"typing","room_id":"{room}"}}"#), "not_subscribed"),
        (
            format!(r#"{{"type":"unsubscribe","room_id":"{room}"}}"#),
            "not_subscribed",
        ),
        (
            format!(r#"{{"type":"read","room_id":"{room}","seq":"x"}}"#),
            "invalid_frame",
        ),
    ];
    for (text, want) in cases {
        a.send_text(text.clone()).await;
        let f = a.next_of("error").await;
        assert_eq!(f["code"], want, "{text} → {f}");
        assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()), "{f}");
    }
    // A binary frame is refused too.
    {
        use futures_util::SinkExt as _;
        a.stream
            .send(tokio_tungstenite::tungstenite::Message::binary(vec![1u8, 2, 3]))
            .await
            .unwrap();
    }
    assert_eq!(a.next_of("error").await["code"], "unsupported_frame");
    // The id of a bad frame is echoed when it can be read.
    let f = a.request(json!({"type": "send", "room_id": room}), "q7").await;
    assert_eq!((f["type"].as_str(), code_of(&f)), (Some("error"), "invalid_frame"));
    // Still open and working.
    assert_eq!(a.request(json!({"type": "ping"}), "p1").await["type"], "pong");
    send(&mut a, &room, "still here", "ok-1").await;
}

/// The code of the error a `subscribe` to `room` is answered with.
async fn refused_subscribe(ws: &mut WsClient, room: &str) -> String {
    let f = ws
        .request(json!({"type": "subscribe", "room_id": room}), "refused")
        .await;
    assert_eq!(f["type"], "error", "{f}");
    code_of(&f).to_string()
}

fn code_of(f: &Value) -> &str {
    f["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_socket_with_1009() {
    let app = TestApp::spawn().await;
    let (room, [alice, bob]) = lobby(&app, ["alice", "bob"]).await;
    let mut b = subscribed(&app, &bob, &room).await;
    let mut a = app.ws(&alice).await;
    let huge = format!(
        r#"{{"type":"send","room_id":"{room}","body":"{}","client_msg_id":"big"}}"#,
        "x".repeat(app.config.ws.max_frame_bytes + 1)
    );
    a.send_text(huge).await;
    assert_eq!(a.closed().await.0, 1009);
    // Bob is unaffected.
    app.say(&alice, &room, "after").await;
    assert_eq!(messages(&mut b, &room, 1).await, vec![(1, "after".to_string())]);
}

#[tokio::test]
async fn a_bad_token_is_refused_before_the_upgrade() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice", "password123").await;
    let access = alice["access_token"].as_str().unwrap().to_string();
    let (s, b) = app.ws_refused("/api/v1/ws", None).await;
    assert_eq!((s, code(&b)), (401, "unauthorized"));
    let (s, b) = app.ws_refused("/api/v1/ws?token=garbage", None).await;
    assert_eq!((s, code(&b)), (401, "invalid_token"), "{b}");
    let (s, b) = app.ws_refused("/api/v1/ws?tokn=x", Some(&access)).await;
    assert_eq!((s, code(&b)), (400, "invalid_query"));
    // `?token=` works for browsers.
    {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let req = format!("ws://{}/api/v1/ws?token={access}", app.addr)
            .into_client_request()
            .unwrap();
        let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("query token works");
        drop(stream);
    }
    // A plain GET is told to upgrade, and to what.
    let res = app
        .http
        .get(app.url("/api/v1/ws"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (res.status().as_u16(), res.headers()["upgrade"].to_str().unwrap()),
        (426, "websocket")
    );
    let b: Value = res.json().await.unwrap();
    assert_eq!(code(&b), "upgrade_required");
    // A revoked session's token no longer opens a socket.
    app.expect(204, "POST", "/api/v1/auth/logout", Some(&access), None)
        .await;
    let (s, b) = app.ws_refused("/api/v1/ws", Some(&access)).await;
    assert_eq!((s, code(&b)), (401, "session_revoked"));
}

#[tokio::test]
async fn logout_and_a_password_change_close_the_sessions_sockets() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice", "password123").await;
    let first = alice["access_token"].as_str().unwrap().to_string();
    let (_, second) = app.login("alice", "password123").await;
    let second = second["access_token"].as_str().unwrap().to_string();
    let (_, third) = app.login("alice", "password123").await;
    let third = third["access_token"].as_str().unwrap().to_string();
    let mut one = app.ws(&first).await;
    let mut two = app.ws(&second).await;
    let mut three = app.ws(&third).await;

    app.expect(204, "POST", "/api/v1/auth/logout", Some(&first), None).await;
    let (code, reason) = one.closed().await;
    assert_eq!((code, reason.as_str()), (4001, "session_ended: logout"));

    // A password change ends every other session; the one that changed it stays.
    let (s, b) = app
        .call(
            "PUT",
            "/api/v1/users/me/password",
            Some(&second),
            Some(json!({"current_password": "password123", "new_password": "password456"})),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(
        three.closed().await,
        (4001, "session_ended: password_changed".to_string())
    );
    assert_eq!(two.request(json!({"type": "ping"}), "p").await["type"], "pong");
}

#[tokio::test]
async fn kick_and_ban_end_the_subscription_with_a_reason() {
    let app = TestApp::spawn().await;
    let (room, [alice, bob, carol]) = lobby(&app, ["alice", "bob", "carol"]).await;
    let mut a = subscribed(&app, &alice, &room).await;
    let mut b = subscribed(&app, &bob, &room).await;

    app.expect(
        204,
        "DELETE",
        &format!("/api/v1/rooms/{room}/members/bob"),
        Some(&alice),
        None,
    )
    .await;
    let u = b.next_of("unsubscribed").await;
    assert_eq!(
        (u["room_id"].as_str(), u["reason"].as_str()),
        (Some(room.as_str()), Some("kicked"))
    );
    let left = a.next_of("member_left").await;
    assert_eq!(
        (left["user"].as_str(), left["reason"].as_str()),
        (Some("bob"), Some("kicked"))
    );
    // Nothing more reaches bob from that room.
    app.say(&alice, &room, "after the kick").await;
    assert_eq!(a.request(json!({"type": "ping"}), "p").await["type"], "pong");
    assert_eq!(
        b.request(json!({"type": "ping"}), "p").await["type"],
        "pong",
        "no message before the pong"
    );

    // A ban ends a reader's subscription too, and a new one is refused.
    let mut c = subscribed(&app, &carol, &room).await;
    app.expect(
        201,
        "POST",
        &format!("/api/v1/rooms/{room}/bans"),
        Some(&alice),
        Some(json!({"username": "carol", "reason": "spam"})),
    )
    .await;
    assert_eq!(c.next_of("unsubscribed").await["reason"], "banned");
    assert_eq!(refused_subscribe(&mut c, &room).await, "banned");
}

#[tokio::test]
async fn membership_and_message_changes_are_pushed_as_events() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = room_with(&app, &alice, "Lobby", &[]).await;
    let mut a = subscribed(&app, &alice, &room).await;

    app.expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    let j = a.next_of("member_joined").await;
    assert_eq!((j["user"].as_str(), j["role"].as_str()), (Some("bob"), Some("member")));

    let m = app.say(&bob, &room, "typo").await;
    let seq = m["seq"].as_i64().unwrap();
    app.expect(
        200,
        "PATCH",
        &format!("/api/v1/rooms/{room}/messages/{seq}"),
        Some(&bob),
        Some(json!({"body": "fixed"})),
    )
    .await;
    let e = a.next_of("message_edited").await;
    assert_eq!((e["seq"].as_i64(), e["body"].as_str()), (Some(seq), Some("fixed")));
    assert!(e["edited_at"].is_string());

    app.expect(
        204,
        "DELETE",
        &format!("/api/v1/rooms/{room}/messages/{seq}"),
        Some(&alice),
        None,
    )
    .await;
    let d = a.next_of("message_deleted").await;
    assert_eq!((d["seq"].as_i64(), d["id"].clone()), (Some(seq), m["id"].clone()));

    app.expect(
        200,
        "PATCH",
        &format!("/api/v1/rooms/{room}/members/bob"),
        Some(&alice),
        Some(json!({"role": "admin"})),
    )
    .await;
    let r = a.next_of("member_role_changed").await;
    assert_eq!((r["user"].as_str(), r["role"].as_str()), (Some("bob"), Some("admin")));

    app.expect(
        200,
        "PATCH",
        &format!("/api/v1/rooms/{room}"),
        Some(&alice),
        Some(json!({"topic": "news"})),
    )
    .await;
    let u = a.next_of("room_updated").await;
    assert_eq!((u["topic"].as_str(), u["name"].as_str()), (Some("news"), Some("Lobby")));

    app.expect(204, "POST", &format!("/api/v1/rooms/{room}/leave"), Some(&bob), None)
        .await;
    let l = a.next_of("member_left").await;
    assert_eq!((l["user"].as_str(), l["reason"].as_str()), (Some("bob"), Some("left")));
}

#[tokio::test]
async fn typing_reaches_the_others_once_per_interval_and_is_never_stored() {
    let app = TestApp::spawn().await;
    let (room, [alice, bob]) = lobby(&app, ["alice", "bob"]).await;
    let mut a = subscribed(&app, &alice, &room).await;
    let mut b = subscribed(&app, &bob, &room).await;
    for _ in 0..5 {
        b.send(json!({"type": "typing", "room_id": room})).await;
    }
    let t = a.next_of("typing").await;
    assert_eq!(
        (t["user"].as_str(), t["room_id"].as_str()),
        (Some("bob"), Some(room.as_str()))
    );
    // The four repeats inside the interval were dropped: the next frame is the pong.
    let next = a.request(json!({"type": "ping"}), "p").await;
    assert_eq!(next["type"], "pong");
    let (_, r) = app
        .call("GET", &format!("/api/v1/rooms/{room}"), Some(&alice), None)
        .await;
    assert_eq!(r["last_seq"], 0, "typing is not a message");
}

#[tokio::test]
async fn presence_follows_the_first_and_last_connection() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    room_with(&app, &alice, "Lobby", &[&bob]).await;
    let mut a = app.ws(&alice).await;
    let b1 = app.ws(&bob).await;
    let p = a.next_of("presence").await;
    assert_eq!(
        (p["user"].as_str(), p["status"].as_str()),
        (Some("bob"), Some("online"))
    );
    // A second connection changes nothing; closing both makes bob offline.
    let b2 = app.ws(&bob).await;
    drop(b1);
    drop(b2);
    // Presence frames are states: "online" may be repeated, never contradicted out of order.
    loop {
        let p = a.next_of("presence").await;
        assert_eq!(p["user"], "bob");
        if p["status"] == "offline" {
            break;
        }
        assert_eq!(p["status"], "online");
    }
    // Someone connecting learns who is online already, in one frame.
    let mut b = app.ws(&bob).await;
    let list = b.next_of("presence_list").await;
    assert_eq!((&list["online"], &list["offline"]), (&json!(["alice"]), &json!([])));
}

#[tokio::test]
async fn the_send_rate_limit_answers_rate_limited_with_a_retry_hint() {
    let app = TestApp::spawn_with(|c| {
        c.limits.messages_per_sec = 1;
        c.limits.message_burst = 3;
    })
    .await;
    let (room, [alice]) = lobby(&app, ["alice"]).await;
    let mut a = app.ws(&alice).await;
    for i in 0..3 {
        send(&mut a, &room, "burst", &format!("b{i}")).await;
    }
    let f = a
        .request(
            json!({"type": "send", "room_id": room, "body": "one too many", "client_msg_id": "b3"}),
            "b3",
        )
        .await;
    assert_eq!(code_of(&f), "rate_limited", "{f}");
    let wait = f["retry_after_ms"].as_u64().expect("a retry hint");
    assert!((1..=1000).contains(&wait), "{f}");
    // REST shares the budget: 429 with Retry-After.
    let res = app
        .http
        .post(app.url(&format!("/api/v1/rooms/{room}/messages")))
        .bearer_auth(&alice)
        .json(&json!({"body": "rest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    // After the hint, sending works again.
    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    send(&mut a, &room, "later", "b4").await;
}

#[tokio::test]
async fn a_silent_peer_is_dropped_after_two_heartbeats() {
    let app = TestApp::spawn_with(|c| c.ws.heartbeat_secs = 1).await;
    let alice = app.user("alice").await;
    let mut a = app.ws(&alice).await;
    // Not reading means not answering pings.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(a.closed().await, (4000, "heartbeat_timeout".to_string()));
}

#[tokio::test]
async fn operator_commands_reach_live_sockets() {
    use crate::cli::{chatd, outcome, run};
    let app = TestApp::spawn().await;
    let (room, [alice, bob]) = lobby(&app, ["alice", "bob"]).await;
    let dir = crate::helpers::scratch_dir();
    let url = Some(app.db.url.as_str());

    // `chatd room remove-member`, run in another process, ends bob's subscription.
    let mut b = subscribed(&app, &bob, &room).await;
    let (status, _, err) = outcome(&run(chatd(dir.path(), url, &["room", "remove-member", "lobby", "bob"])));
    assert_eq!(status, 0, "{err}");
    assert_eq!(b.next_of("unsubscribed").await["reason"], "kicked");

    // `chatd room delete` ends everyone's.
    let mut a = subscribed(&app, &alice, &room).await;
    let (status, _, err) = outcome(&run(chatd(dir.path(), url, &["room", "delete", "lobby", "--yes"])));
    assert_eq!(status, 0, "{err}");
    assert_eq!(a.next_of("unsubscribed").await["reason"], "room_deleted");

    // `chatd user disable` closes every socket of the account.
    let (status, _, err) = outcome(&run(chatd(dir.path(), url, &["user", "disable", "bob"])));
    assert_eq!(status, 0, "{err}");
    assert_eq!(b.closed().await, (4003, "account_disabled".to_string()));
    // And alice's socket is untouched.
    assert_eq!(a.request(json!({"type": "ping"}), "p").await["type"], "pong");
}

#[tokio::test]
async fn a_room_made_private_drops_readers_who_are_not_members() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let room = room_with(&app, &alice, "Lobby", &[&carol]).await;
    // Bob reads the public room without joining; carol is a member.
    let mut b = subscribed(&app, &bob, &room).await;
    let mut c = subscribed(&app, &carol, &room).await;
    app.expect(
        200,
        "PATCH",
        &format!("/api/v1/rooms/{room}"),
        Some(&alice),
        Some(json!({"visibility": "private"})),
    )
    .await;
    assert_eq!(c.next_of("room_updated").await["visibility"], "private");
    assert_eq!(b.next_of("unsubscribed").await["reason"], "access_lost");
    // Bob cannot subscribe again (the room is now invisible to him); carol still is.
    let mut b2 = app.ws(&bob).await;
    assert_eq!(refused_subscribe(&mut b2, &room).await, "room_not_found");
    assert_eq!(refused_subscribe(&mut c, &room).await, "already_subscribed");
}

#[tokio::test]
async fn someone_added_to_a_room_hears_of_it_without_subscribing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = app.room(&alice, "Secret", "private").await;
    let mut b = app.ws(&bob).await;
    app.expect(
        201,
        "POST",
        &format!("/api/v1/rooms/{room}/members"),
        Some(&alice),
        Some(json!({"username": "bob"})),
    )
    .await;
    let j = b.next_of("member_joined").await;
    assert_eq!(
        (j["room_id"].as_str(), j["user"].as_str()),
        (Some(room.as_str()), Some("bob"))
    );
    // A direct room too.
    let (s, dm) = app
        .call("POST", "/api/v1/dms", Some(&alice), Some(json!({"username": "bob"})))
        .await;
    assert_eq!(s, 201, "{dm}");
    let j = b.next_of("member_joined").await;
    assert_eq!(j["room_id"], dm["id"]);
}

#[tokio::test]
async fn after_the_event_listener_reconnects_missed_changes_are_applied() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let mut a = app.ws(&alice).await;
    // A revocation that sends no event (as if it were lost while the listener was away)…
    let db = app.db.client().await;
    db.execute("UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout'", &[])
        .await
        .unwrap();
    // …is found when the listener's connection is cut and comes back.
    let n = db
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chatd listener' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 1, "one listener");
    assert_eq!(a.closed().await, (4001, "session_ended: logout".to_string()));
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let mut app = TestApp::spawn().await;
    let (room, [alice]) = lobby(&app, ["alice"]).await;
    let mut a = subscribed(&app, &alice, &room).await;
    app.stop();
    assert_eq!(a.closed().await, (1001, "going_away".to_string()));
}

#[tokio::test]
async fn a_client_sending_faster_than_it_reads_is_slowed_not_closed() {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let app = TestApp::spawn_with(|c| c.ws.outbound_queue = 16).await;
    let alice = app.user("alice").await;
    let mut a = app.ws(&alice).await;
    // 2,000 frames written at once, far more than the queue holds; every one is answered.
    for i in 0..2000 {
        let frame = if i % 2 == 0 {
            json!({"type": "ping", "id": i}).to_string()
        } else {
            format!("{{garbage {i}")
        };
        a.stream.feed(Message::text(frame)).await.unwrap();
    }
    a.stream.flush().await.unwrap();
    let (mut pongs, mut errors) = (0, 0);
    while pongs + errors < 2000 {
        match a.next().await["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => errors += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((pongs, errors), (1000, 1000));
}

#[tokio::test]
async fn presence_for_more_co_members_than_the_queue_holds_is_one_frame() {
    let app = TestApp::spawn_with(|c| c.ws.outbound_queue = 16).await;
    let names: Vec<String> = (0..40).map(|i| format!("user{i:02}")).collect();
    let mut tokens = Vec::new();
    for n in &names {
        tokens.push(app.user(n).await);
    }
    let others: Vec<&str> = tokens[1..].iter().map(String::as_str).collect();
    room_with(&app, &tokens[0], "Lobby", &others).await;
    let mut online = Vec::new();
    for t in &tokens[1..] {
        online.push(app.ws(t).await);
    }
    // user00 connects while 39 co-members are online and a churning one comes and goes.
    let churn = tokens[1].clone();
    let mut first = app.ws(&tokens[0]).await;
    let snapshot = first.next_of("presence_list").await;
    assert_eq!(snapshot["online"].as_array().unwrap().len(), 39, "{snapshot}");
    for _ in 0..20 {
        drop(app.ws(&churn).await);
    }
    // Still connected, and presence settles on the truth: user01 online (it kept a socket).
    assert_eq!(first.request(json!({"type": "ping"}), "p").await["type"], "pong");
    drop(online);
    // 39 people leaving at once is one frame (or a few), never a queue overflow.
    let mut offline = std::collections::HashSet::new();
    while offline.len() < 39 {
        let f = first.next().await;
        match f["type"].as_str() {
            Some("presence") if f["status"] == "offline" => {
                offline.insert(f["user"].as_str().unwrap().to_string());
            }
            Some("presence_list") => {
                for u in f["offline"].as_array().unwrap() {
                    offline.insert(u.as_str().unwrap().to_string());
                }
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_kick_stops_a_replay_in_progress() {
    let app = TestApp::spawn().await;
    let (room, [alice, bob]) = lobby(&app, ["alice", "bob"]).await;
    // 1,000 messages of 16 kB: far more than the socket buffers of a client that is not reading.
    let big = "\u{1F600}".repeat(4000);
    let mut sender = app.ws(&alice).await;
    for i in 0..1000 {
        send(&mut sender, &room, &big, &format!("m{i}")).await;
    }
    let mut b = app.ws_small_buffer(&bob).await;
    b.send(json!({"type": "subscribe", "room_id": room, "since_seq": 0}))
        .await;
    // The replay runs into bob's full socket; then he is kicked.
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.expect(
        204,
        "DELETE",
        &format!("/api/v1/rooms/{room}/members/bob"),
        Some(&alice),
        None,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // He reads: part of the replay (what was on the wire, and the page in hand), then the end.
    let mut replayed = 0;
    loop {
        let f = b.next().await;
        match f["type"].as_str() {
            Some("message") => replayed += 1,
            Some("unsubscribed") => {
                assert_eq!(f["reason"], "kicked");
                break;
            }
            _ => {}
        }
    }
    assert!(
        replayed < 1000,
        "the replay went on after the kick ({replayed} messages)"
    );
    // And nothing after it.
    assert_eq!(b.request(json!({"type": "ping"}), "p").await["type"], "pong");
}

#[tokio::test]
async fn a_client_that_stops_reading_in_a_quiet_room_is_closed_as_slow() {
    let app = TestApp::spawn_with(|c| c.ws.heartbeat_secs = 1).await;
    let (room, [alice, bob]) = lobby(&app, ["alice", "bob"]).await;
    let big = "\u{1F600}".repeat(4000);
    for _ in 0..300 {
        app.say(&alice, &room, &big).await;
    }
    // A replay of 4.8 MB into a socket nobody reads: the write stalls and, with nothing else
    // queued for it (a quiet room), the stall itself closes it within two heartbeats.
    let mut b = app.ws_small_buffer(&bob).await;
    b.send(json!({"type": "subscribe", "room_id": room, "since_seq": 0}))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(b.closed().await, (4008, "slow_consumer".to_string()));
}
