//! The WebSocket gateway at `GET /api/v1/ws` (protocol reference: docs/protocol.md).
//!
//! `protocol` holds the frames and close codes, `hub` who is subscribed to what and the
//! fan-out, `conn` one connection's reader and writer. The access token is checked before the
//! upgrade (a bad one is an ordinary 401 JSON error); afterwards the session is watched through
//! the bus, so a logout, a revoked session, a password change or a disabled account closes the
//! socket within moments, with a close code that says why.

pub mod conn;
pub mod hub;
mod presence;
pub mod protocol;

/// An upgraded connection.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::{Reply as _, Response};
use warp::Filter;

use crate::app::AppState;
use crate::auth::ClientInfo;
use crate::http::error::reply;
use crate::http::{
    authenticate, bearer, client_info, header_or_query_token, only_params, query, with_state, ApiError, Query,
};

pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "v1" / "ws")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(handshake())
        .and(client_info(state))
        .and(with_state(state))
        .then(upgrade)
        .map(reply)
        .boxed()
}

async fn upgrade(
    header: Option<String>,
    query: Query,
    ws: Option<Handshake>,
    client: ClientInfo,
    state: AppState,
) -> Result<Response, ApiError> {
    let mut query = query?;
    only_params(&query, &["token"])?;
    let header = header_or_query_token(header, query.remove("token"));
    let user = authenticate(&state, header).await?;
    let Some(ws) = ws else {
        return Ok(upgrade_required());
    };
    // Counted from here until the socket closes; refused before the upgrade, as plain HTTP.
    let slot = state.guards.connect(user.user_id, client.ip_addr())?;
    Ok(accept(ws, state.config.ws.max_frame_bytes, move |socket| async move {
        conn::serve(socket, state, user, client).await;
        drop(slot);
    }))
}

/// The answer to a plain HTTP request at a WebSocket endpoint: 426, naming the protocol to
/// upgrade to (RFC 9110 §15.5.22).
pub(crate) fn upgrade_required() -> Response {
    let mut refusal = ApiError::new(
        StatusCode::UPGRADE_REQUIRED,
        "upgrade_required",
        "this endpoint speaks WebSocket: send a WebSocket upgrade request",
    )
    .into_response();
    let headers = refusal.headers_mut();
    headers.insert("upgrade", HeaderValue::from_static("websocket"));
    headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
    refusal
}

/// Accepts an upgrade: answers 101 and, once the connection is handed over, runs `serve` on
/// the socket in a task of its own.
pub(crate) fn accept<F, Fut>(ws: Handshake, max_frame_bytes: usize, serve: F) -> Response
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let config = socket_config(max_frame_bytes);
    tokio::spawn(async move {
        match ws.on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                serve(socket).await;
            }
            Err(e) => tracing::debug!("websocket upgrade failed: {e}"),
        }
    });
    let mut switching = Response::default();
    *switching.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = switching.headers_mut();
    headers.insert("connection", HeaderValue::from_static("upgrade"));
    headers.insert("upgrade", HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(ws.key.as_bytes())) {
        headers.insert("sec-websocket-accept", accept);
    }
    switching
}

/// The socket's buffers. Reads go through a small buffer (an idle connection holds a few KiB,
/// not the library's 128 KiB default) that grows for a large frame; writes collect in one buffer
/// until the writer flushes (when its queue is empty) or it holds `WRITE_BUFFER` bytes.
fn socket_config(max_frame_bytes: usize) -> WebSocketConfig {
    const READ_BUFFER: usize = 4 * 1024;
    const WRITE_BUFFER: usize = 64 * 1024;
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_frame_size(Some(max_frame_bytes))
        .max_message_size(Some(max_frame_bytes))
}

pub(crate) fn handshake() -> impl Filter<Extract = (Option<Handshake>,), Error = std::convert::Infallible> + Clone {
    warp::header::headers_cloned()
        .and(warp::ext::optional::<OnUpgrade>())
        .map(Handshake::from_request)
}

/// A WebSocket upgrade request (RFC 6455 §4.2.1) that this server can accept: its key, and
/// hyper's handle on the connection once the 101 response is out.
pub struct Handshake {
    key: String,
    on_upgrade: OnUpgrade,
}

impl Handshake {
    /// `None` for anything but a well-formed version-13 upgrade (answered 426).
    fn from_request(headers: HeaderMap, on_upgrade: Option<OnUpgrade>) -> Option<Self> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let has_token = |name: &str, token: &str| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        let upgrade = has_token("connection", "upgrade")
            && has_token("upgrade", "websocket")
            && text("sec-websocket-version") == Some("13");
        let key = text("sec-websocket-key")?.trim();
        if !upgrade || key.is_empty() {
            return None;
        }
        Some(Self {
            key: key.to_owned(),
            on_upgrade: on_upgrade?,
        })
    }
}
