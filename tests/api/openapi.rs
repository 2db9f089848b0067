//! `GET /api/v1/openapi.json` describes every route the server has, and nothing it lacks.
//!
//! Two directions: the routes written in `src/` (every `warp::path!` and the method filters
//! next to it) must each be an operation of the description, so a route added without its
//! documentation fails here; and every operation of the description, called on the live
//! server, must reach a handler rather than the "no such endpoint" answer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::helpers::{code, TestApp};

const METHODS: [&str; 7] = ["get", "head", "post", "put", "patch", "delete", "options"];

/// A route as (path with every parameter written `{}`, lower-case method).
type Route = (String, String);

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `warp::path!("api" / "v1" / "rooms" / String / "join")` → `/api/v1/rooms/{}/join`.
fn paths_in(statement: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (at, _) in statement.match_indices("warp::path!(") {
        let rest = &statement[at + "warp::path!(".len()..];
        let inner = &rest[..rest.find(')').expect("a closed warp::path!")];
        let segments: Vec<String> = inner
            .split('/')
            .map(|s| {
                let s = s.trim();
                match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    Some(literal) => literal.to_string(),
                    None => "{}".to_string(),
                }
            })
            .collect();
        paths.push(format!("/{}", segments.join("/")));
    }
    paths
}

/// The method filters (`warp::get()`, …) written in a statement.
fn methods_in(statement: &str) -> BTreeSet<String> {
    METHODS
        .iter()
        .filter(|m| statement.contains(&format!("warp::{m}()")))
        .map(|m| m.to_string())
        .collect()
}

/// Whether `statement` continues the filter bound to `name` (`name.and(…)` or
/// `name\n    .and(…)`).
fn continues(statement: &str, name: &str) -> bool {
    statement.match_indices(name).any(|(at, _)| {
        let before_ok = statement[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        before_ok && statement[at + name.len()..].trim_start().starts_with(".and(")
    })
}

/// Every route defined in the source: each `warp::path!` with the method filters of its
/// statement, or — for a path bound to a name and given its methods later (`let me =
/// warp::path!(…); me.and(warp::get())`) — of the statements that continue that name.
fn routes_in_source() -> BTreeSet<Route> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        if !text.contains("warp::path!(") {
            continue;
        }
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let statements: Vec<&str> = code.split(';').collect();
        for statement in &statements {
            let paths = paths_in(statement);
            if paths.is_empty() {
                continue;
            }
            let mut methods = methods_in(statement);
            if methods.is_empty() {
                // The statement may begin with the end of what came before (a `fn` line).
                let before = &statement[..statement.find("warp::path!(").unwrap_or(0)];
                let name = before
                    .rfind("let ")
                    .and_then(|at| before[at + 4..].split_once('='))
                    .map(|(name, _)| name.trim().to_string());
                if let Some(name) = name {
                    for other in &statements {
                        if continues(other, &name) {
                            methods.extend(methods_in(other));
                        }
                    }
                }
            }
            assert!(
                !methods.is_empty(),
                "{}: no method filter found for {paths:?}; write `warp::get()` (etc.) in the route's \
                 statement, or in one that continues the name it is bound to",
                file.display()
            );
            for path in &paths {
                for method in &methods {
                    routes.insert((path.clone(), method.clone()));
                }
            }
        }
    }
    routes
}

/// `/api/v1/rooms/{id}/members/{username}` → `/api/v1/rooms/{}/members/{}`.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                ops.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    ops
}

async fn description(app: &TestApp) -> Value {
    let (status, doc) = app.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200, "{doc}");
    doc
}

#[tokio::test]
async fn the_description_is_openapi_3_1_and_needs_no_token() {
    let app = TestApp::spawn().await;
    let doc = description(&app).await;
    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3.1"), "openapi is {version}");
    assert_eq!(doc["info"]["title"], "chatd");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    // Every `$ref` points at a component that exists.
    let text = doc.to_string();
    for (at, _) in text.match_indices("\"$ref\":\"#/") {
        let rest = &text[at + "\"$ref\":\"#/".len()..];
        let pointer = &rest[..rest.find('"').unwrap()];
        assert!(
            !doc.pointer(&format!("/{pointer}")).unwrap_or(&Value::Null).is_null(),
            "dangling $ref #/{pointer}"
        );
    }
}

#[tokio::test]
async fn every_route_in_the_source_is_described() {
    let source = routes_in_source();
    // The scan itself must see the routes, or this test would pass on nothing.
    assert!(
        source.len() >= 45,
        "only {} routes found in src/: {source:?}",
        source.len()
    );
    for expected in [
        ("/api/v1/users/me", "patch"),
        ("/healthz", "head"),
        ("/api/v1/rooms/{}/messages/{}", "delete"),
        ("/api/v1/ws", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            source.contains(&(expected.0.to_string(), expected.1.to_string())),
            "the scan missed {expected:?}"
        );
    }
    let app = TestApp::spawn().await;
    let doc = description(&app).await;
    let described: BTreeSet<Route> = operations(&doc)
        .into_iter()
        .map(|(path, method, _)| (shape(&path), method))
        .collect();
    let missing: Vec<&Route> = source.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "routes served but not in /api/v1/openapi.json (add a #[utoipa::path] in src/http/openapi.rs): {missing:?}"
    );
    let extra: Vec<&Route> = described.difference(&source).collect();
    assert!(extra.is_empty(), "described but not in the source: {extra:?}");
}

/// A value for a path parameter of this schema: the operation must be routed whatever the
/// resource (it need not exist).
fn placeholder(param: &Value) -> String {
    let schema = &param["schema"];
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("integer"), _) => "1".into(),
        (_, Some("uuid")) => uuid::Uuid::new_v4().to_string(),
        _ => "nobody".into(),
    }
}

#[tokio::test]
async fn every_described_operation_is_routed_and_answers_a_documented_status() {
    let app = TestApp::spawn().await;
    let admin = app.admin("openapi_admin").await;
    let doc = description(&app).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 45, "{} operations", ops.len());
    for (path, method, op) in ops {
        let mut url = path.clone();
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["in"] == "path" {
                let name = param["name"].as_str().unwrap();
                url = url.replace(&format!("{{{name}}}"), &placeholder(param));
            }
        }
        assert!(!url.contains('{'), "{method} {path}: a path parameter is not declared");
        // Logging out ends the session: use one of its own.
        let token = if path == "/api/v1/auth/logout" {
            app.user("openapi_leaving").await
        } else {
            admin.clone()
        };
        let body = op.get("requestBody").map(|_| json!({}));
        let (status, answer) = app.call(&method.to_uppercase(), &url, Some(&token), body).await;
        let unrouted = (status == 404 && code(&answer) == "not_found")
            || (status == 405 && code(&answer) == "method_not_allowed")
            || (method == "head" && matches!(status, 404 | 405));
        assert!(!unrouted, "{method} {url}: not routed ({status} {answer})");
        let documented = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k == &status.to_string());
        assert!(
            documented,
            "{method} {url}: answered {status} {answer}, which the description does not list"
        );
    }
}

#[tokio::test]
async fn a_method_a_path_does_not_take_is_405_with_allow() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        ("PUT", "/api/v1/users/me", "GET, PATCH, DELETE"),
        ("TRACE", "/healthz", "GET, HEAD"),
        ("POST", "/api/v1/rooms/nothing/messages/7", "PATCH, DELETE"),
        ("DELETE", "/api/v1/openapi.json", "GET"),
    ] {
        let res = app
            .http
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(code(&body), "method_not_allowed");
    }
    // A path nothing serves is still 404, and a served method is still served.
    let (status, body) = app.call("PUT", "/api/v1/nothing/here", None, None).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = app.call("GET", "/api/v1/users/me", None, None).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
}
