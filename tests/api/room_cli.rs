//! `chatd room …`: room administration from the command line, seen through the API.

use serde_json::{json, Value};

use crate::cli::{chatd, outcome, run};
use crate::helpers::{code, scratch_dir, TestApp};

/// `chatd room ARGS…`: exit status, stdout, stderr.
fn room(dir: &std::path::Path, url: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["room"];
    all.extend_from_slice(args);
    outcome(&run(chatd(dir, url, &all)))
}

#[tokio::test]
async fn room_commands_manage_rooms_the_api_sees() {
    let app = TestApp::spawn().await;
    let dir = scratch_dir();
    let url = Some(app.db.url.as_str());
    let room_cmd = |args: &[&str]| room(dir.path(), url, args);
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;

    let (status, out, err) = room_cmd(&["create", "Ops", "--private", "--owner", "alice", "--topic", "on call"]);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("created private room Ops"), "{out}");
    let (_, page) = app.call("GET", "/api/v1/rooms?mine=true", Some(&alice), None).await;
    let room = &page["items"][0];
    assert_eq!(
        (room["name"].as_str(), room["my_role"].as_str(), room["topic"].as_str()),
        (Some("Ops"), Some("owner"), Some("on call"))
    );
    let id = room["id"].as_str().unwrap().to_string();
    // Private: bob cannot see it until the operator adds him.
    assert_eq!(
        app.call("GET", &format!("/api/v1/rooms/{id}"), Some(&bob), None)
            .await
            .0,
        404
    );
    let (status, out, _) = room_cmd(&["add-member", "ops", "bob", "--role", "admin"]);
    assert_eq!(status, 0);
    assert!(out.contains("added bob to ops as admin"), "{out}");
    let (s, r) = app.call("GET", &format!("/api/v1/rooms/{id}"), Some(&bob), None).await;
    assert_eq!((s, r["my_role"].as_str()), (200, Some("admin")));

    // Ownership moves with set-role owner.
    let (status, out, _) = room_cmd(&["set-role", "OPS", "bob", "owner"]);
    assert_eq!(status, 0);
    assert!(out.contains("bob is now the owner"), "{out}");
    let (_, members) = app
        .call("GET", &format!("/api/v1/rooms/{id}/members"), Some(&bob), None)
        .await;
    assert_eq!(
        members["items"],
        json!([
            {"username": "alice", "display_name": null, "role": "admin", "joined_at": members["items"][0]["joined_at"]},
            {"username": "bob", "display_name": null, "role": "owner", "joined_at": members["items"][1]["joined_at"]},
        ])
    );

    // list and show, as text and JSON; direct rooms are listed too (by id).
    app.call("POST", "/api/v1/dms", Some(&alice), Some(json!({"username": "bob"})))
        .await;
    let (status, out, _) = room_cmd(&["list", "--json"]);
    assert_eq!(status, 0);
    let list: Value = serde_json::from_str(&out).expect("list --json is JSON");
    let kinds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["visibility"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["private", "direct"]);
    let (_, out, _) = room_cmd(&["list"]);
    assert!(
        out.lines()
            .any(|l| l.contains("Ops") && l.contains("private") && l.contains("active")),
        "{out}"
    );
    assert!(out.contains("(direct: alice, bob)"), "{out}");
    let (status, out, _) = room_cmd(&["show", &id, "--json"]);
    assert_eq!(status, 0);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["room"]["name"], "Ops");
    assert_eq!(shown["members"].as_array().unwrap().len(), 2);

    // remove-member, archive, delete.
    let (status, _, _) = room_cmd(&["remove-member", "Ops", "alice"]);
    assert_eq!(status, 0);
    assert_eq!(
        app.call("GET", &format!("/api/v1/rooms/{id}"), Some(&alice), None)
            .await
            .0,
        404
    );
    let (status, _, _) = room_cmd(&["archive", "Ops"]);
    assert_eq!(status, 0);
    let (s, b) = app
        .call(
            "POST",
            &format!("/api/v1/rooms/{id}/messages"),
            Some(&bob),
            Some(json!({"body": "hi"})),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "room_archived"));
    let (status, _, err) = room_cmd(&["delete", "Ops"]);
    assert_eq!(status, 2, "delete needs --yes");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(
        app.call("GET", &format!("/api/v1/rooms/{id}"), Some(&bob), None)
            .await
            .0,
        200,
        "nothing was deleted"
    );
    let (status, out, _) = room_cmd(&["delete", "Ops", "--yes"]);
    assert_eq!(status, 0, "{out}");
    assert_eq!(
        app.call("GET", &format!("/api/v1/rooms/{id}"), Some(&bob), None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn room_commands_fail_with_one_line_and_the_documented_exit_code() {
    let app = TestApp::spawn().await;
    let dir = scratch_dir();
    let url = Some(app.db.url.as_str());
    let room_cmd = |args: &[&str]| room(dir.path(), url, args);
    app.user("alice").await;
    assert_eq!(
        room_cmd(&["create", "general"]).0,
        0,
        "an operator's room may have no owner"
    );
    assert_eq!(room_cmd(&["create", "owned", "--owner", "alice"]).0, 0);
    app.user("dora").await;
    app.disable("dora").await;
    for (args, exit, needle) in [
        // The operator is told why (an API user only hears of no such user).
        (
            vec!["create", "y", "--owner", "dora"],
            1,
            "'dora' is disabled: enable it first",
        ),
        (vec!["add-member", "general", "dora"], 1, "'dora' is disabled"),
        (vec!["create", "GENERAL"], 1, "already exists"),
        (vec!["create", ""], 2, "name must be"),
        (vec!["create", "x", "--owner", "nobody"], 1, "no user named 'nobody'"),
        (vec!["show", "nowhere"], 1, "no room named 'nowhere'"),
        (vec!["add-member", "general", "ghost"], 1, "no user named 'ghost'"),
        (
            vec!["add-member", "general", "alice", "--role", "owner"],
            2,
            "invalid value 'owner'",
        ),
        (vec!["remove-member", "general", "alice"], 1, "not a member"),
        (vec!["set-role", "general", "alice", "king"], 2, "invalid value 'king'"),
        (vec!["archive"], 2, "ROOM"),
        // The operator cannot leave a room without its owner either.
        (
            vec!["remove-member", "owned", "alice"],
            1,
            "make another member owner first",
        ),
    ] {
        let (code, _, err) = room_cmd(&args);
        assert_eq!(code, exit, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // After an archive, writes are refused with the same rule the API applies.
    assert_eq!(room_cmd(&["archive", "general"]).0, 0);
    let (code, _, err) = room_cmd(&["add-member", "general", "alice"]);
    assert_eq!(code, 1);
    assert!(err.contains("archived"), "{err}");
}
