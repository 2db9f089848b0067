//! `/api/v1/admin/*`: live statistics and operator actions, for server administrators
//! (users with `is_admin`) and operator tokens minted from the signing secret (`chatd tui` on
//! the server's machine). Everyone else gets 403 `admin_required`. And `/metrics`.
//!
//! Statistics and the connection list cover every live node of the cluster (the others' figures
//! as of their last heartbeat; their connections asked of them); the room list is of what is
//! live on this node; `stream` pushes a snapshot of all of it once per interval over a
//! WebSocket, so a console needs one connection instead of a polling loop.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::{Reply as _, Response};
use warp::Filter;

use super::error::reply;
use super::{
    bearer, body, json, no_content, only_params, param_limit, parse_json, path_param, query, room_id, with_state,
    ApiError, Body, Query,
};
use crate::admin::types::{CloseRequest, ConnectionInfo, ConnectionPage, RoomPage, Snapshot, StreamFrame};
use crate::admin::{self, RoomOrder};
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::chat::audit::{AuditQuery, AUDIT_LIMIT};
use crate::chat::Actor;
use crate::error::Error;
use crate::page::Limit;
use crate::ws::protocol::Close;

const CONNECTIONS_LIMIT: Limit = Limit {
    default: 100,
    max: 1000,
};
const ROOMS_LIMIT: Limit = Limit {
    default: 100,
    max: 1000,
};
/// The longest reason an administrator may give for closing a connection (it travels in the
/// close frame, which holds 123 bytes of reason).
const MAX_CLOSE_REASON: usize = 100;
/// How often a streaming administrator's session is re-checked.
const RECHECK: Duration = Duration::from_secs(30);

pub fn routes(state: &AppState) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let stats = warp::path!("api" / "v1" / "admin" / "stats")
        .and(warp::get())
        .and(bearer())
        .and(with_state(state))
        .then(stats)
        .map(reply);
    let connections = warp::path!("api" / "v1" / "admin" / "connections")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(with_state(state))
        .then(connections)
        .map(reply);
    let close = warp::path!("api" / "v1" / "admin" / "connections" / String)
        .and(warp::delete())
        .and(bearer())
        .and(query())
        .and(body(state))
        .and(with_state(state))
        .then(close_connection)
        .map(reply);
    let rooms = warp::path!("api" / "v1" / "admin" / "rooms")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(with_state(state))
        .then(rooms)
        .map(reply);
    let archive = warp::path!("api" / "v1" / "admin" / "rooms" / String / "archive")
        .and(warp::post())
        .and(bearer())
        .and(with_state(state))
        .then(archive_room)
        .map(reply);
    let disable = warp::path!("api" / "v1" / "admin" / "users" / String / "disable")
        .and(warp::post())
        .and(bearer())
        .and(with_state(state))
        .then(|name, auth, state| set_disabled(name, auth, state, true))
        .map(reply);
    let enable = warp::path!("api" / "v1" / "admin" / "users" / String / "enable")
        .and(warp::post())
        .and(bearer())
        .and(with_state(state))
        .then(|name, auth, state| set_disabled(name, auth, state, false))
        .map(reply);
    let stream = warp::path!("api" / "v1" / "admin" / "stream")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(crate::ws::handshake())
        .and(with_state(state))
        .then(stream)
        .map(reply);
    let audit = warp::path!("api" / "v1" / "admin" / "audit")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(with_state(state))
        .then(audit)
        .map(reply);
    stats
        .or(connections)
        .unify()
        .or(close)
        .unify()
        .or(rooms)
        .unify()
        .or(archive)
        .unify()
        .or(disable)
        .unify()
        .or(enable)
        .unify()
        .or(stream)
        .unify()
        .or(audit)
        .unify()
}

/// `GET /metrics`, when this listener serves it (`served_here`): on the main listener unless
/// `server.metrics_bind` gives it one of its own.
pub fn metrics_route(
    state: &AppState,
    served_here: bool,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and_then(move || async move {
            if served_here {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(with_state(state))
        .map(metrics)
}

/// Who is administering.
enum Admin {
    /// An operator token (no user, no session).
    Operator,
    /// A server administrator's session.
    User(AuthUser),
}

impl Admin {
    fn name(&self) -> &str {
        match self {
            Self::Operator => "operator",
            Self::User(u) => &u.username,
        }
    }

    /// Who the audit log records (`None`: the operator).
    fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::Operator => None,
            Self::User(u) => Some(u.user_id),
        }
    }
}

/// The caller, if they may administer the server.
async fn admin(state: &AppState, header: Option<String>) -> Result<Admin, ApiError> {
    if let Some(token) = super::bearer_token(header.as_deref()) {
        if state.accounts.verify_operator(token).is_ok() {
            return Ok(Admin::Operator);
        }
    }
    let user = super::authenticate(state, header).await?;
    if !user.is_admin {
        return Err(Error::forbidden("admin_required", "only server administrators may use the admin API").into());
    }
    Ok(Admin::User(user))
}

async fn stats(auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    admin(&state, auth).await?;
    Ok(json(
        StatusCode::OK,
        &admin::stats(&state.node, &state.hub, &state.db).await,
    ))
}

/// The `cursor` parameter (opaque, from a previous page's `next_cursor`), decoded to a `T`;
/// 422 `invalid_cursor` as for every other list.
fn cursor<T: std::str::FromStr>(q: &std::collections::HashMap<String, String>) -> Result<Option<T>, ApiError> {
    q.get("cursor")
        .map(|c| {
            crate::page::decode(c)?
                .parse()
                .map_err(|_| crate::page::invalid_cursor())
        })
        .transpose()
        .map_err(ApiError::from)
}

/// Every live node's connections (`scope=cluster`, the default), or this node's (`scope=node`,
/// what nodes ask each other).
async fn connections(auth: Option<String>, q: Query, state: AppState) -> Result<Response, ApiError> {
    admin(&state, auth).await?;
    let q = q?;
    only_params(&q, &["cursor", "limit", "scope"])?;
    let limit = CONNECTIONS_LIMIT.apply(param_limit(&q, CONNECTIONS_LIMIT)?)? as usize;
    let page = match q.get("scope").map(String::as_str) {
        None | Some("cluster") => {
            let after = q.get("cursor").map(|c| ClusterCursor::parse(c)).transpose()?;
            cluster_connections(&state, after, limit).await
        }
        Some("node") => {
            let after: u64 = cursor(&q)?.unwrap_or(0);
            let (items, more) = admin::connections(&state.node, &state.hub, after, limit);
            let next_cursor = more
                .then(|| items.last().map(|c| crate::page::encode(&c.id.to_string())))
                .flatten();
            ConnectionPage { items, next_cursor }
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "scope must be cluster (every node, the default) or node (this one)",
            ))
        }
    };
    Ok(json(StatusCode::OK, &page))
}

/// Where a cluster-wide listing of connections goes on: after connection `conn` of node `node`,
/// which started at `started` (Unix nanoseconds; nodes are listed oldest first).
#[derive(Debug, Clone, Copy, PartialEq)]
struct ClusterCursor {
    started: i128,
    node: Uuid,
    conn: u64,
}

impl ClusterCursor {
    fn encode(&self) -> String {
        crate::page::encode(&format!("{}:{}:{}", self.started, self.node, self.conn))
    }

    fn parse(cursor: &str) -> Result<Self, ApiError> {
        let text = crate::page::decode(cursor)?;
        let mut parts = text.splitn(3, ':');
        let parsed = (|| {
            Some(Self {
                started: parts.next()?.parse().ok()?,
                node: parts.next()?.parse().ok()?,
                conn: parts.next()?.parse().ok()?,
            })
        })();
        parsed.ok_or_else(|| crate::page::invalid_cursor().into())
    }
}

/// How long another node may take to list its connections; one that does not answer in time is
/// left out of the listing (and logged).
const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// Every live node's connections after `after`, node by node (oldest node first, each node's
/// oldest connection first): this node's from the hub, the others' from their own admin API
/// (`scope=node`, with an operator token of the shared signing secret).
async fn cluster_connections(state: &AppState, after: Option<ClusterCursor>, limit: usize) -> ConnectionPage {
    let own = state.node.id;
    let nanos = |t: time::OffsetDateTime| t.unix_timestamp_nanos();
    let live = async {
        let conn = state.db.conn().await?;
        Ok::<_, Error>(crate::db::nodes::live(&*conn).await?)
    };
    let mut nodes: Vec<(i128, Uuid, Option<String>)> = match live.await {
        Ok(live) => live
            .into_iter()
            .map(|n| (nanos(n.started_at), n.id, (n.id != own).then_some(n.url)))
            .collect(),
        Err(e) => {
            tracing::debug!("other nodes unknown, listing this node's connections only: {e}");
            Vec::new()
        }
    };
    // This node, registered or not (yet).
    if !nodes.iter().any(|n| n.1 == own) {
        nodes.push((nanos(state.node.started_at), own, None));
        nodes.sort_unstable_by_key(|n| (n.0, n.1));
    }
    let mut items: Vec<ConnectionInfo> = Vec::new();
    let mut last: Option<ClusterCursor> = None;
    let mut more = false;
    for (started, node, url) in nodes {
        let from = match after {
            Some(c) if (started, node) < (c.started, c.node) => continue,
            Some(c) if (started, node) == (c.started, c.node) => c.conn,
            _ => 0,
        };
        let need = limit - items.len();
        if need == 0 {
            more = true;
            break;
        }
        let (page, node_has_more) = match url {
            None => admin::connections(&state.node, &state.hub, from, need),
            Some(url) => match peer_connections(state, &url, from, need).await {
                // Only what that node says is its own: a URL shared by mistake must not list
                // another node's connections twice.
                Ok((page, more)) => (page.into_iter().filter(|c| c.node_id == node).collect(), more),
                Err(e) => {
                    tracing::warn!(%node, %url, "node left out of the connection listing: {e}");
                    continue;
                }
            },
        };
        if let Some(c) = page.last() {
            last = Some(ClusterCursor {
                started,
                node,
                conn: c.id,
            });
        }
        items.extend(page);
        if node_has_more {
            more = true;
            break;
        }
    }
    let next_cursor = if more { last.map(|c| c.encode()) } else { None };
    ConnectionPage { items, next_cursor }
}

/// One page of another node's own connections.
async fn peer_connections(
    state: &AppState,
    url: &str,
    after: u64,
    limit: usize,
) -> anyhow::Result<(Vec<ConnectionInfo>, bool)> {
    let token = state.accounts.issue_operator(60)?;
    let mut query = vec![("scope", "node".to_owned()), ("limit", limit.to_string())];
    if after > 0 {
        query.push(("cursor", crate::page::encode(&after.to_string())));
    }
    let response = state
        .peers
        .get(format!("{url}/api/v1/admin/connections"))
        .query(&query)
        .bearer_auth(token)
        .timeout(PEER_TIMEOUT)
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "answered {}", response.status());
    let page: ConnectionPage = response.json().await?;
    Ok((page.items, page.next_cursor.is_some()))
}

async fn rooms(auth: Option<String>, q: Query, state: AppState) -> Result<Response, ApiError> {
    admin(&state, auth).await?;
    let q = q?;
    only_params(&q, &["cursor", "limit"])?;
    let limit = ROOMS_LIMIT.apply(param_limit(&q, ROOMS_LIMIT)?)? as usize;
    let after: Option<Uuid> = cursor(&q)?;
    let (items, next) = admin::rooms(&state.hub, &state.db, RoomOrder::ById { after }, limit).await?;
    let next_cursor = next.map(|id| crate::page::encode(&id.to_string()));
    Ok(json(StatusCode::OK, &RoomPage { items, next_cursor }))
}

/// Closes a connection of this node (204), or of another live node named by `?node=` (202: that
/// node is told over the bus and closes it if it still has it).
async fn close_connection(
    id: String,
    auth: Option<String>,
    q: Query,
    body: Body,
    state: AppState,
) -> Result<Response, ApiError> {
    let who = admin(&state, auth).await?;
    let not_found = || Error::not_found("connection_not_found", "no such connection on this node");
    let q = q?;
    only_params(&q, &["node"])?;
    let node = match q.get("node") {
        None => state.node.id,
        Some(n) => Uuid::parse_str(n).map_err(|_| Error::not_found("node_not_found", "no such live node"))?,
    };
    let id: u64 = path_param(&id).parse().map_err(|_| not_found())?;
    let body = body?;
    // No body, or `null` (the description's optional body), gives no reason.
    let req: CloseRequest = if body.trim_ascii().is_empty() || body.trim_ascii() == b"null" {
        CloseRequest::default()
    } else {
        parse_json(Ok(body))?
    };
    let reason = req.reason.unwrap_or_default();
    let reason = reason.trim();
    if reason.len() > MAX_CLOSE_REASON || reason.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_reason",
            format!("reason must be at most {MAX_CLOSE_REASON} bytes on one line"),
        )
        .into());
    }
    if node != state.node.id {
        let db = state.db.conn().await?;
        if !crate::db::nodes::is_live(&*db, node).await.map_err(Error::from)? {
            return Err(Error::not_found("node_not_found", "no such live node").into());
        }
        let event = crate::bus::Event::CloseConnection {
            node_id: node,
            connection_id: id,
            reason: reason.to_owned(),
        };
        crate::bus::notify(&*db, &event).await.map_err(Error::from)?;
        record_close(&state, &who, node, id, None, reason).await?;
        tracing::info!(admin = who.name(), %node, connection = id, reason, "closing a connection of another node");
        return Ok(warp::reply::with_status(warp::reply(), StatusCode::ACCEPTED).into_response());
    }
    // Whose it is, for the audit log, read before it goes.
    let (conns, _) = admin::connections(&state.node, &state.hub, id.saturating_sub(1), 1);
    let owner = conns.first().filter(|c| c.id == id).map(|c| c.user_id);
    if !state.hub.close_connection(id, Close::ClosedByAdmin(reason.to_owned())) {
        return Err(not_found().into());
    }
    record_close(&state, &who, state.node.id, id, owner, reason).await?;
    tracing::info!(
        admin = who.name(),
        connection = id,
        reason,
        "connection closed by an administrator"
    );
    Ok(no_content())
}

/// Records an administrator's closing of connection `id` of `node` (whose user, when known,
/// is `owner`). The connection is not a database row, so there is no transaction to join.
async fn record_close(
    state: &AppState,
    who: &Admin,
    node: Uuid,
    id: u64,
    owner: Option<Uuid>,
    reason: &str,
) -> Result<(), ApiError> {
    let entry = crate::db::audit::Entry {
        actor: who.user_id(),
        target: owner,
        reason: Some(reason).filter(|r| !r.is_empty()),
        details: Some(serde_json::json!({ "connection_id": id, "node_id": node })),
        ..Default::default()
    };
    let conn = state.db.conn().await?;
    crate::db::audit::record(&*conn, crate::db::audit::AuditAction::ConnectionClosed, &entry)
        .await
        .map_err(Error::from)?;
    Ok(())
}

async fn archive_room(id: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    let who = admin(&state, auth).await?;
    let room = room_id(&id)?;
    state
        .chat
        .archive_room_recorded_as(&Actor::Operator, room, who.user_id())
        .await?;
    tracing::info!(admin = who.name(), %room, "room archived by an administrator");
    Ok(no_content())
}

async fn set_disabled(
    name: String,
    auth: Option<String>,
    state: AppState,
    disabled: bool,
) -> Result<Response, ApiError> {
    let who = admin(&state, auth).await?;
    let name = path_param(&name);
    if let Admin::User(me) = &who {
        // By id: names are matched without regard to case.
        if disabled && state.accounts.user(&name).await?.id == me.user_id {
            return Err(Error::conflict("cannot_disable_self", "you cannot disable your own account").into());
        }
    }
    let user = state.accounts.set_disabled_by(&name, disabled, who.user_id()).await?;
    tracing::info!(admin = who.name(), user = %user.username, disabled, "account changed by an administrator");
    Ok(json(StatusCode::OK, &user))
}

/// The whole audit log, filtered, newest first.
async fn audit(auth: Option<String>, q: Query, state: AppState) -> Result<Response, ApiError> {
    admin(&state, auth).await?;
    let q = q?;
    only_params(&q, &["room", "user", "action", "since", "until", "before", "limit"])?;
    let limit = AUDIT_LIMIT.apply(param_limit(&q, AUDIT_LIMIT)?)?;
    let filter = AuditQuery {
        room: q.get("room").cloned(),
        user: q.get("user").cloned(),
        action: q.get("action").cloned(),
        since: q.get("since").cloned(),
        until: q.get("until").cloned(),
    }
    .parse()?;
    let page = state
        .chat
        .audit_log(&filter, q.get("before").map(String::as_str), limit)
        .await?;
    Ok(json(StatusCode::OK, &page))
}

/// The stream's parameters, bounded.
struct StreamParams {
    interval: Duration,
    rooms: usize,
    connections: usize,
}

fn stream_params(q: Query) -> Result<StreamParams, ApiError> {
    let q = q?;
    only_params(&q, &["interval_ms", "rooms", "connections", "token"])?;
    let number = |name: &str, default: u64, min: u64, max: u64| -> Result<u64, ApiError> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => v.parse().ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{name} must be a whole number from {min} to {max}"),
                )
            }),
        }
    };
    Ok(StreamParams {
        interval: Duration::from_millis(number("interval_ms", 1000, 250, 60_000)?),
        rooms: number("rooms", 200, 0, 1000)? as usize,
        connections: number("connections", 500, 0, 5000)? as usize,
    })
}

async fn stream(
    auth: Option<String>,
    q: Query,
    ws: Option<crate::ws::Handshake>,
    state: AppState,
) -> Result<Response, ApiError> {
    let token = q.as_ref().ok().and_then(|q| q.get("token").cloned());
    let auth = super::header_or_query_token(auth, token);
    let who = admin(&state, auth).await?;
    let params = stream_params(q)?;
    let Some(ws) = ws else {
        return Ok(crate::ws::upgrade_required());
    };
    Ok(crate::ws::accept(ws, 4096, move |socket| {
        push_snapshots(socket, state, who, params)
    }))
}

/// One snapshot of everything the console shows.
pub async fn snapshot(state: &AppState, rooms: usize, connections: usize) -> Result<Snapshot, Error> {
    let stats = admin::stats(&state.node, &state.hub, &state.db).await;
    let (rooms, more_rooms) = admin::rooms(&state.hub, &state.db, RoomOrder::Busiest, rooms).await?;
    let more_rooms = more_rooms.is_some();
    let page = cluster_connections(state, None, connections).await;
    Ok(Snapshot {
        at: time::OffsetDateTime::now_utc(),
        stats,
        rooms,
        truncated: more_rooms || page.next_cursor.is_some(),
        connections: page.items,
    })
}

/// Sends a snapshot at once and then every interval, until the client leaves, the server
/// stops, or the administrator's session ends.
async fn push_snapshots(socket: crate::ws::Socket, state: AppState, who: Admin, params: StreamParams) {
    let (mut sink, mut incoming) = socket.split();
    let mut tick = tokio::time::interval(params.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.tick().await;
    let close = loop {
        tokio::select! {
            _ = tick.tick() => {
                let frame = match snapshot(&state, params.rooms, params.connections).await {
                    Ok(s) => StreamFrame::Snapshot(s),
                    Err(e) => {
                        // The database is down: skip this one, the next may work.
                        tracing::debug!("admin snapshot failed: {e}");
                        continue;
                    }
                };
                let text = match serde_json::to_string(&frame) {
                    Ok(t) => t,
                    Err(e) => break Some(internal(e)),
                };
                let sent = tokio::time::timeout(params.interval.max(Duration::from_secs(5)), sink.send(Message::text(text))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break None;
                }
            }
            _ = recheck.tick() => {
                if let Admin::User(user) = &who {
                    if let Some(why) = session_ended(&state, user).await {
                        break Some(why);
                    }
                }
            }
            m = incoming.next() => match m {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break Some(Close::Normal),
                Some(Ok(_)) => {}
            },
            _ = state.hub.stopping() => break Some(Close::GoingAway),
        }
    };
    if let Some(why) = close {
        let _ = tokio::time::timeout(Duration::from_secs(5), sink.send(why.message())).await;
    }
}

fn internal(e: serde_json::Error) -> Close {
    tracing::warn!("admin snapshot could not be encoded: {e}");
    Close::Internal
}

/// Why a streaming administrator's access ended, if it has.
async fn session_ended(state: &AppState, user: &AuthUser) -> Option<Close> {
    let conn = state.db.conn().await.ok()?;
    let s = crate::db::sessions::state(&*conn, user.session_id, user.user_id)
        .await
        .ok()?;
    match s {
        None => Some(Close::SessionEnded("revoked".into())),
        Some(s) if s.disabled => Some(Close::AccountDisabled),
        Some(s) if s.revoked || s.expired => Some(Close::SessionEnded("revoked".into())),
        Some(s) if !s.is_admin => Some(Close::SessionEnded("no longer an administrator".into())),
        Some(_) => None,
    }
}

/// `/metrics`: Prometheus scrapes it without credentials, as is usual; bind the server to a
/// private address (or filter the path at the proxy) to keep it from the public.
fn metrics(state: AppState) -> Response {
    let text = state.node.render_metrics(&state.hub, &state.db);
    let mut res = text.into_response();
    res.headers_mut().insert(
        "content-type",
        warp::http::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}
