//! The REST API under `/api/v1`, built from warp filters: one file per resource, composed in
//! `routes`. Handlers are thin: parse the wire format, call the accounts service, shape the
//! reply. Every handler answers (`.then(handler).map(reply)`), so once a route's path and
//! method match, no other route is tried and errors keep their precise code.

mod accounts;
mod admin;
mod audit;
pub mod error;
mod health;
mod invites;
mod members;
mod messages;
pub mod openapi;
mod reactions;
mod rooms;
mod search;
pub mod server;
mod sessions;
mod users;

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use warp::http::{HeaderMap, HeaderValue};
use warp::reply::{Reply, Response};
use warp::Filter;

use crate::app::AppState;
use crate::auth::{AuthUser, ClientInfo};
use crate::chat::Actor;
use crate::error::Error;
use crate::page::Limit;
pub use error::ApiError;

/// The whole HTTP surface.
pub fn routes(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = warp::Rejection> + Clone {
    let api = accounts::routes(&state)
        .or(users::routes(&state))
        .unify()
        .or(sessions::routes(&state))
        .unify()
        .or(rooms::routes(&state))
        .unify()
        .or(members::routes(&state))
        .unify()
        .or(messages::routes(&state))
        .unify()
        .or(health::routes(&state))
        .unify()
        .or(admin::routes(&state))
        .unify()
        .or(admin::metrics_route(&state, state.config.server.metrics_bind.is_none()))
        .unify()
        .or(crate::ws::routes(&state))
        .unify()
        .or(invites::routes(&state))
        .unify()
        .or(openapi::routes())
        .unify()
        .or(reactions::routes(&state))
        .unify()
        .or(search::routes(&state))
        .unify()
        .or(audit::routes(&state))
        .unify()
        // Boxed: the nested `Or` types grow with every route, and past a depth rustc's trait
        // solver gives up in release builds (E0275 overflow evaluating `Unpin`).
        .boxed();
    // CORS inside `recover`, so a refused origin gets the JSON error shape too.
    let api = match cors(&state.config) {
        Some(cors) => api.with(cors).map(Reply::into_response).boxed(),
        None => api,
    };
    let api = api.recover(error::recover).unify().boxed();
    let metrics = state.node.metrics.clone();
    api.with(warp::reply::with::headers(security_headers(&state.config)))
        .with(warp::trace(|info| {
            // One span per request; everything logged while handling it carries the id.
            // Invite codes are bearer secrets: logged by their first characters only.
            let path = invites::redact(info.path());
            tracing::info_span!("request", id = %uuid::Uuid::new_v4().simple(), method = %info.method(), path = &*path)
        }))
        .with(warp::log::custom(move |info| {
            metrics.request(
                info.path(),
                info.method().as_str(),
                info.status().as_u16(),
                info.elapsed().as_secs_f64(),
            );
            let path = invites::redact(info.path());
            tracing::info!(
                target: "chatd::http",
                method = %info.method(),
                path = &*path,
                status = info.status().as_u16(),
                ms = info.elapsed().as_secs_f64() * 1000.0,
            )
        }))
}

/// What a separate metrics listener (`server.metrics_bind`) serves: `/metrics` alone.
pub fn metrics_only(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    admin::metrics_route(&state, true).recover(error::recover).unify()
}

/// Sent with every response: nothing chatd serves is to be sniffed, framed, cached or allowed to
/// load anything; HSTS when configured.
fn security_headers(config: &crate::config::Config) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    // Validated with the configuration.
    if let Ok(csp) = HeaderValue::from_str(&config.server.content_security_policy) {
        if !csp.is_empty() {
            h.insert("content-security-policy", csp);
        }
    }
    if config.server.hsts_max_age_secs > 0 {
        let value = format!("max-age={}; includeSubDomains", config.server.hsts_max_age_secs);
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert("strict-transport-security", v);
        }
    }
    h
}

/// The CORS policy, when `server.cors_allowed_origins` lists any origin: those origins' scripts
/// may call every endpoint with a bearer token (no cookies: credentials are not allowed).
fn cors(config: &crate::config::Config) -> Option<warp::filters::cors::Cors> {
    let origins = &config.server.cors_allowed_origins;
    if origins.is_empty() {
        return None;
    }
    Some(
        warp::cors()
            // Validated with the configuration: each is exactly scheme://host[:port].
            .allow_origins(origins.iter().map(String::as_str))
            .allow_methods(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
            .allow_headers(["authorization", "content-type"])
            .expose_headers(["retry-after"])
            .max_age(600u32)
            .build(),
    )
}

pub(crate) fn with_state(
    state: &AppState,
) -> impl Filter<Extract = (AppState,), Error = std::convert::Infallible> + Clone {
    let state = state.clone();
    warp::any().map(move || state.clone())
}

/// A request body as read by `body`: its errors are values, not warp rejections.
pub(crate) type Body = Result<Bytes, ApiError>;

/// The request body, bounded by `server.max_body_bytes`. Read here rather than with warp's
/// `content_length_limit`, whose rejections would be merged with other routes' (a body-less
/// `DELETE /users/me` came back as 405); chunked bodies are accepted and bounded too.
pub(crate) fn body(state: &AppState) -> impl Filter<Extract = (Body,), Error = warp::Rejection> + Clone {
    let limit = state.config.server.max_body_bytes;
    let deadline = std::time::Duration::from_secs(state.config.server.body_read_timeout_secs);
    optional_header("content-type")
        .and(optional_header("content-length"))
        .and(warp::body::stream())
        .then(
            move |media: Option<String>, declared: Option<String>, stream| async move {
                // A body trickled in a byte at a time would hold the connection (and its handler)
                // for as long as the client likes.
                tokio::time::timeout(deadline, read_body(media, declared, stream, limit))
                    .await
                    .unwrap_or_else(|_| {
                        Err(ApiError::new(
                            warp::http::StatusCode::REQUEST_TIMEOUT,
                            "request_timeout",
                            format!("the request body did not arrive within {} s", deadline.as_secs()),
                        ))
                    })
            },
        )
}

async fn read_body<S, B>(media: Option<String>, declared: Option<String>, stream: S, limit: u64) -> Body
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use bytes::BufMut as _;
    use futures_util::StreamExt as _;
    // A body declared as something else (a form, text) is refused rather than read as JSON;
    // one declared as nothing is read as JSON.
    if let Some(media) = media {
        let essence = media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::new(
                warp::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("the request body must be application/json, not {essence}"),
            ));
        }
    }
    let too_large = || {
        ApiError::new(
            warp::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    };
    if declared
        .and_then(|d| d.trim().parse::<u64>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(too_large());
    }
    let mut stream = std::pin::pin!(stream);
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request("invalid_body", "the request body could not be read"))?;
        if (buf.len() + chunk.remaining()) as u64 > limit {
            return Err(too_large());
        }
        buf.put(chunk);
    }
    Ok(buf.freeze())
}

/// A header's value if present and valid UTF-8; never rejects.
fn optional_header(
    name: &'static str,
) -> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    warp::header::optional::<String>(name)
        .or(warp::any().map(|| None))
        .unify()
}

/// The `Authorization` header, checked inside the handler so auth errors keep their code.
pub(crate) fn bearer() -> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    optional_header("authorization")
}

/// Query parameters as a map; handlers pick and validate what they need.
pub(crate) fn query() -> impl Filter<Extract = (Query,), Error = std::convert::Infallible> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .map(|raw: String| parse_query(&raw))
}

/// The query string, or why it cannot be read; like `Body`, the error is the handler's to
/// return, so a route that matched answers with it.
pub(crate) type Query = Result<HashMap<String, String>, ApiError>;

/// Strict `application/x-www-form-urlencoded`: a malformed escape, bytes that are not UTF-8
/// or a parameter given twice is a 400, never silently read as something else.
fn parse_query(raw: &str) -> Query {
    let invalid = |why: String| ApiError::bad_request("invalid_query", why);
    let decode = |part: &str| -> Result<String, ApiError> {
        let bytes = part.as_bytes();
        let well_formed = bytes.iter().enumerate().all(|(i, b)| {
            *b != b'%'
                || bytes
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        });
        if !well_formed {
            return Err(invalid(format!("malformed percent-escape in '{part}'")));
        }
        percent_encoding::percent_decode_str(&part.replace('+', " "))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| invalid("the query string is not UTF-8".into()))
    };
    let mut params = HashMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key)?;
        if params.insert(key.clone(), decode(value)?).is_some() {
            return Err(invalid(format!("query parameter '{key}' is given more than once")));
        }
    }
    Ok(params)
}

/// Who is calling: the user agent and the client's address — the peer's, or, when the peer is
/// one of `server.trusted_proxies`, the nearest address in `X-Forwarded-For` that is not.
pub(crate) fn client_info(
    state: &AppState,
) -> impl Filter<Extract = (ClientInfo,), Error = std::convert::Infallible> + Clone {
    let proxies = state.proxies.clone();
    optional_header("user-agent")
        .and(optional_header("x-forwarded-for"))
        .and(warp::ext::optional::<Peer>())
        .map(
            move |user_agent: Option<String>, forwarded: Option<String>, peer: Option<Peer>| {
                let peer = peer.map(|p| p.0);
                let forwarded_ip = peer
                    .filter(|p| trusted(&proxies, p.ip()))
                    .and_then(|_| forwarded_client(forwarded.as_deref()?, &proxies));
                match forwarded_ip {
                    Some(ip) => ClientInfo {
                        user_agent,
                        ip: Some(ip.to_string()),
                        port: None,
                    },
                    None => ClientInfo {
                        user_agent,
                        ip: peer.map(|a| a.ip().to_string()),
                        port: peer.map(|a| a.port()),
                    },
                }
            },
        )
}

/// The TCP peer of a request, put in its extensions by `server::serve`.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

fn trusted(proxies: &[ipnet::IpNet], ip: std::net::IpAddr) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client in an `X-Forwarded-For` list that trusted proxies appended to: walking from the
/// right (the entry our proxy wrote), the first address that is not a trusted proxy. Entries to
/// its left were written by the client itself and prove nothing.
fn forwarded_client(header: &str, proxies: &[ipnet::IpNet]) -> Option<std::net::IpAddr> {
    let mut last = None;
    for entry in header.rsplit(',') {
        let ip: std::net::IpAddr = entry.trim().parse().ok()?;
        if !trusted(proxies, ip) {
            return Some(ip);
        }
        last = Some(ip);
    }
    last
}

/// Parses a JSON object body into `T`, with a 400 that says what is wrong.
pub(crate) fn parse_json<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let body = body?;
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(ApiError::bad_request(
                "invalid_json",
                "the request body must be a JSON object",
            ))
        }
        // serde would happily read a struct from a JSON array; the API takes objects only.
        Some(b'{') => {}
        Some(_) => {
            return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                Ok(_) => ApiError::bad_request("invalid_request", "the request body must be a JSON object"),
                Err(e) => ApiError::bad_request("invalid_json", format!("the request body is not valid JSON: {e}")),
            })
        }
    }
    serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        // serde reports some type mismatches (a number where an enum's name belongs) as syntax
        // errors; if the body parses as JSON, the shape is what is wrong.
        let well_formed = || serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
        match e.classify() {
            Category::Data => ApiError::bad_request("invalid_request", format!("invalid request body: {e}")),
            Category::Syntax if well_formed() => {
                ApiError::bad_request("invalid_request", format!("invalid request body: {e}"))
            }
            _ => ApiError::bad_request("invalid_json", format!("the request body is not valid JSON: {e}")),
        }
    })
}

/// A path segment, percent-decoded (`/users/%63arol` is `/users/carol`).
pub(crate) fn path_param(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

/// The token of an `Authorization: Bearer <token>` header, if that is what it holds.
pub(crate) fn bearer_token(header: Option<&str>) -> Option<&str> {
    header
        .and_then(|h| h.split_once(' '))
        // The scheme is case-insensitive (RFC 9110 §11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
}

/// The `Authorization` header of a WebSocket upgrade, or one made from its `?token=`: browsers
/// cannot set headers on a WebSocket. The header wins.
pub(crate) fn header_or_query_token(header: Option<String>, token: Option<String>) -> Option<String> {
    header.or(token.map(|t| format!("Bearer {t}")))
}

/// Refuses query parameters other than `allowed` (400 `invalid_query`).
pub(crate) fn only_params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match q.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_request(
            "invalid_query",
            format!("unknown query parameter '{k}': accepted are {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// Resolves the bearer token to the caller.
pub(crate) async fn authenticate(state: &AppState, header: Option<String>) -> Result<AuthUser, ApiError> {
    let token = bearer_token(header.as_deref()).ok_or_else(|| {
        ApiError::new(
            warp::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an 'Authorization: Bearer <token>' header is required",
        )
    })?;
    Ok(state.accounts.authenticate(token).await?)
}

/// A JSON reply with a status.
pub(crate) fn json<T: serde::Serialize>(status: warp::http::StatusCode, value: &T) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

pub(crate) fn no_content() -> Response {
    warp::http::StatusCode::NO_CONTENT.into_response()
}

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`) or a value.
pub(crate) fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// The caller, as the chat service sees them.
pub(crate) async fn actor(state: &AppState, header: Option<String>) -> Result<Actor, ApiError> {
    Ok(Actor::from(&authenticate(state, header).await?))
}

/// Answers a request addressed to the room `id` in its path: `handle` gets the caller and the
/// room. A request that fails on its input (400, 413, 415, 422, or a 404 for something else
/// it names) is checked against the room first, so one addressed to a room the caller may not
/// see is 404 `room_not_found` whatever else is wrong with it — as for a room that does not
/// exist.
pub(crate) async fn in_room(
    state: &AppState,
    auth: Option<String>,
    id: &str,
    handle: impl AsyncFnOnce(&Actor, uuid::Uuid) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    use warp::http::StatusCode;
    let actor = actor(state, auth).await?;
    let room = room_id(id)?;
    let result = handle(&actor, room).await;
    let about_the_input = |e: &ApiError| {
        e.code != "room_not_found"
            && matches!(
                e.status,
                StatusCode::BAD_REQUEST
                    | StatusCode::NOT_FOUND
                    | StatusCode::PAYLOAD_TOO_LARGE
                    | StatusCode::UNSUPPORTED_MEDIA_TYPE
                    | StatusCode::UNPROCESSABLE_ENTITY
            )
    };
    match result {
        Err(e) if about_the_input(&e) => {
            match state.chat.check_visible(&actor, room).await {
                Err(hidden @ Error::NotFound { .. }) => Err(hidden.into()),
                // Visible, or the check itself failed: the input's error is the answer.
                _ => Err(e),
            }
        }
        other => other,
    }
}

/// A room id in a path. Anything that is not an id names no room.
pub(crate) fn room_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(&path_param(raw)).map_err(|_| crate::chat::room_not_found().into())
}

/// A `true`/`false` query parameter; absent is `false`.
pub(crate) fn param_bool(q: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(_) => Err(Error::invalid("invalid_query", format!("{name} must be true or false")).into()),
    }
}

/// The `limit` query parameter, checked against its bounds.
pub(crate) fn param_limit(q: &HashMap<String, String>, bounds: Limit) -> Result<Option<i64>, ApiError> {
    q.get("limit")
        .map(|l| l.parse::<i64>().map_err(|_| bounds.error().into()))
        .transpose()
}
