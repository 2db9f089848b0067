//! `GET /api/v1/search`: full-text search over the messages the caller may read — ranking,
//! phrases, pagination, the room filter, edits and deletes, and above all that no one finds
//! text in a room they may not read.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::{code, TestApp};

/// `q` (and any other parameters) percent-encoded into a search URL.
fn search_path(params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            let v: String = percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
            format!("{k}={v}")
        })
        .collect();
    format!("/api/v1/search?{}", query.join("&"))
}

async fn search(app: &TestApp, token: &str, params: &[(&str, &str)]) -> Value {
    app.expect(200, "GET", &search_path(params), Some(token), None).await
}

/// The bodies of a page's hits, in order.
fn bodies(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"]["body"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn hits_are_ranked_phrases_match_in_order_and_snippets_mark_the_words() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "lounge", "public").await;
    let both = app.say(&alice, &room, "apple banana cherry").await;
    app.say(&alice, &room, "apple pie today").await;
    app.say(&alice, &room, "banana split now").await;
    app.say(&alice, &room, "cherry banana reversed").await;

    // Either word: the message with both ranks first.
    let page = search(&app, &alice, &[("q", "apple or banana")]).await;
    let found = bodies(&page);
    assert_eq!(found.len(), 4, "{page}");
    assert_eq!(found[0], "apple banana cherry");
    assert_eq!(page["next_cursor"], Value::Null);
    let top = &page["items"][0];
    assert_eq!(top["message"], both, "the message as history shows it");
    assert_eq!(
        (
            top["room"]["id"].as_str(),
            top["room"]["name"].as_str(),
            top["room"]["visibility"].as_str()
        ),
        (Some(room.as_str()), Some("lounge"), Some("public"))
    );
    assert_eq!(top["snippet"], "«apple» «banana» cherry");
    let ranks: Vec<f64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["rank"].as_f64().unwrap())
        .collect();
    assert!(ranks[0] > ranks[1], "more terms, higher rank: {ranks:?}");

    // All words (the default), in any case; a phrase only in that order; exclusion.
    assert_eq!(
        bodies(&search(&app, &alice, &[("q", "BANANA Apple")]).await),
        ["apple banana cherry"]
    );
    assert_eq!(
        bodies(&search(&app, &alice, &[("q", "\"cherry banana\"")]).await),
        ["cherry banana reversed"]
    );
    let excluded = search(&app, &alice, &[("q", "banana -apple")]).await;
    let mut excluded = bodies(&excluded);
    excluded.sort();
    assert_eq!(excluded, ["banana split now", "cherry banana reversed"]);

    // Equal ranks: newest first.
    app.say(&alice, &room, "twin words").await;
    let newer = app.say(&alice, &room, "twin words").await;
    let page = search(&app, &alice, &[("q", "twin")]).await;
    assert_eq!(page["items"][0]["message"]["seq"], newer["seq"]);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);

    // Text without a word matches nothing (not an error); a word no one wrote, nothing.
    for q in ["!!!", "\"\" -", "zyzzyva"] {
        let page = search(&app, &alice, &[("q", q)]).await;
        assert_eq!(page, json!({"items": [], "next_cursor": null}), "{q}");
    }
}

#[tokio::test]
async fn the_cursor_pages_through_every_hit_exactly_once_in_rank_order() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let rooms = [
        app.room(&alice, "one", "public").await,
        app.room(&alice, "two", "private").await,
    ];
    let mut expected = HashSet::new();
    for k in 0..23 {
        // Ranks vary (1 to 3 occurrences) and tie within each group.
        let body = format!("{} filler {k}", vec!["needle"; k % 3 + 1].join(" "));
        let m = app.say(&alice, &rooms[k % 2], &body).await;
        expected.insert((m["room_id"].as_str().unwrap().to_owned(), m["seq"].as_i64().unwrap()));
    }
    app.say(&alice, &rooms[0], "no match here").await;

    let mut seen = Vec::new();
    let mut ranks = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..10 {
        let mut params = vec![("q", "needle"), ("limit", "5")];
        if let Some(c) = &before {
            params.push(("before", c.as_str()));
        }
        let page = search(&app, &alice, &params).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        for h in items {
            seen.push((
                h["message"]["room_id"].as_str().unwrap().to_owned(),
                h["message"]["seq"].as_i64().unwrap(),
            ));
            ranks.push(h["rank"].as_f64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(items.len(), 5, "only the last page is short");
                before = Some(c.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 23, "every hit once: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), expected);
    assert!(
        ranks.windows(2).all(|w| w[0] >= w[1]),
        "rank order across pages: {ranks:?}"
    );
}

#[tokio::test]
async fn room_id_restricts_the_search_to_one_readable_room() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let a = app.room(&alice, "a-room", "public").await;
    let b = app.room(&alice, "b-room", "public").await;
    let hidden = app.room(&alice, "hidden", "private").await;
    app.say(&alice, &a, "shared word alpha").await;
    app.say(&alice, &b, "shared word beta").await;
    app.say(&alice, &hidden, "shared word gamma").await;

    assert_eq!(
        bodies(&search(&app, &alice, &[("q", "shared"), ("room_id", &b)]).await),
        ["shared word beta"]
    );
    assert_eq!(bodies(&search(&app, &alice, &[("q", "shared")]).await).len(), 3);
    assert_eq!(
        bodies(&search(&app, &alice, &[("q", "shared"), ("room_id", &hidden)]).await),
        ["shared word gamma"]
    );

    // A private room of others is exactly a room that does not exist.
    let (s1, e1) = app
        .call(
            "GET",
            &search_path(&[("q", "shared"), ("room_id", &hidden)]),
            Some(&bob),
            None,
        )
        .await;
    let missing = uuid::Uuid::new_v4().to_string();
    let (s2, e2) = app
        .call(
            "GET",
            &search_path(&[("q", "shared"), ("room_id", &missing)]),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!((s1, code(&e1)), (404, "room_not_found"));
    assert_eq!((s1, &e1), (s2, &e2));
    let (s, e) = app
        .call(
            "GET",
            &search_path(&[("q", "shared"), ("room_id", "not-an-id")]),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!((s, code(&e)), (404, "room_not_found"));
}

#[tokio::test]
async fn no_one_finds_text_in_a_room_they_may_not_read() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let (carol, dave) = (app.user("carol").await, app.user("dave").await);
    let private = app.room(&alice, "secret", "private").await;
    let public = app.room(&alice, "square", "public").await;
    let dm = app
        .expect(
            201,
            "POST",
            "/api/v1/dms",
            Some(&alice),
            Some(json!({"username": "bob"})),
        )
        .await;
    let dm = dm["id"].as_str().unwrap().to_owned();
    app.say(&alice, &private, "zebra in the private room").await;
    app.say(&alice, &public, "zebra in the public room").await;
    app.say(&alice, &dm, "zebra in the direct room").await;
    // carol joins the public room, then is banned from it.
    app.expect(200, "POST", &format!("/api/v1/rooms/{public}/join"), Some(&carol), None)
        .await;
    app.expect(
        201,
        "POST",
        &format!("/api/v1/rooms/{public}/bans"),
        Some(&alice),
        Some(json!({"username": "carol"})),
    )
    .await;

    let found = |page: Value| {
        let mut b: Vec<String> = bodies(&page).into_iter().map(str::to_owned).collect();
        b.sort();
        b
    };
    assert_eq!(
        found(search(&app, &alice, &[("q", "zebra")]).await),
        [
            "zebra in the direct room",
            "zebra in the private room",
            "zebra in the public room"
        ]
    );
    assert_eq!(
        found(search(&app, &bob, &[("q", "zebra")]).await),
        ["zebra in the direct room", "zebra in the public room"],
        "bob is in the direct room, not in the private one"
    );
    assert_eq!(
        found(search(&app, &dave, &[("q", "zebra")]).await),
        ["zebra in the public room"],
        "a stranger reads public rooms only"
    );
    assert!(
        found(search(&app, &carol, &[("q", "zebra")]).await).is_empty(),
        "a banned user reads nothing of that room"
    );
    // Not even a phrase, an `or` or the room's own words get through.
    for q in ["\"private room\"", "private or direct", "secret"] {
        assert!(bodies(&search(&app, &dave, &[("q", q)]).await).is_empty(), "{q}");
    }

    // Naming the rooms: hidden ones are not found; the banned user is told they are banned.
    for (token, room) in [(&dave, &private), (&dave, &dm), (&carol, &private), (&bob, &private)] {
        let (s, e) = app
            .call(
                "GET",
                &search_path(&[("q", "zebra"), ("room_id", room)]),
                Some(token),
                None,
            )
            .await;
        assert_eq!((s, code(&e)), (404, "room_not_found"), "{e}");
    }
    let (s, e) = app
        .call(
            "GET",
            &search_path(&[("q", "zebra"), ("room_id", &public)]),
            Some(&carol),
            None,
        )
        .await;
    assert_eq!((s, code(&e)), (403, "banned"));
}

#[tokio::test]
async fn edits_and_deletes_change_what_is_found_at_once() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "notes", "public").await;
    let m = app.say(&alice, &room, "the walrus sings").await;
    let path = format!("/api/v1/rooms/{room}/messages/{}", m["seq"]);
    assert_eq!(
        bodies(&search(&app, &alice, &[("q", "walrus")]).await),
        ["the walrus sings"]
    );

    app.expect(
        200,
        "PATCH",
        &path,
        Some(&alice),
        Some(json!({"body": "the narwhal sings"})),
    )
    .await;
    assert!(
        bodies(&search(&app, &alice, &[("q", "walrus")]).await).is_empty(),
        "old words gone"
    );
    let page = search(&app, &alice, &[("q", "narwhal")]).await;
    assert_eq!(bodies(&page), ["the narwhal sings"]);
    assert!(page["items"][0]["message"]["edited_at"].is_string());
    assert_eq!(page["items"][0]["snippet"], "the «narwhal» sings");

    app.expect(204, "DELETE", &path, Some(&alice), None).await;
    assert!(
        bodies(&search(&app, &alice, &[("q", "narwhal")]).await).is_empty(),
        "deleted"
    );
    assert!(bodies(&search(&app, &alice, &[("q", "sings")]).await).is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_with_a_stable_code() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let room = app.room(&alice, "r", "public").await;
    app.say(&alice, &room, "hello").await;
    let long = "x".repeat(201);
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], 422, "invalid_query"),
        (vec![("q", "")], 422, "invalid_query"),
        (vec![("q", "   ")], 422, "invalid_query"),
        (vec![("q", &long)], 422, "invalid_query"),
        (vec![("q", "a\nb")], 422, "invalid_query"),
        (vec![("q", "hello"), ("limit", "0")], 422, "invalid_limit"),
        (vec![("q", "hello"), ("limit", "101")], 422, "invalid_limit"),
        (vec![("q", "hello"), ("limit", "ten")], 422, "invalid_limit"),
        (vec![("q", "hello"), ("before", "garbage!")], 422, "invalid_cursor"),
        (vec![("q", "hello"), ("before", "MTIz")], 422, "invalid_cursor"),
        (vec![("q", "hello"), ("room_id", "nope")], 404, "room_not_found"),
        (vec![("q", "hello"), ("page", "2")], 400, "invalid_query"),
    ];
    for (params, status, expected) in cases {
        let (s, e) = app.call("GET", &search_path(&params), Some(&alice), None).await;
        assert_eq!((s, code(&e)), (status, expected), "{params:?}: {e}");
    }
    let (s, e) = app.call("GET", "/api/v1/search?q=a&q=b", Some(&alice), None).await;
    assert_eq!((s, code(&e)), (400, "invalid_query"));
    // The longest query and the largest page are fine.
    let longest = "hello ".repeat(33);
    let page = search(&app, &alice, &[("q", longest.trim()), ("limit", "100")]).await;
    assert_eq!(bodies(&page), ["hello"]);

    let (s, e) = app.call("GET", &search_path(&[("q", "hello")]), None, None).await;
    assert_eq!((s, code(&e)), (401, "unauthorized"));
    let (s, e) = app
        .call("GET", &search_path(&[("q", "hello")]), Some("not-a-token"), None)
        .await;
    assert_eq!(s, 401, "{e}");
}
