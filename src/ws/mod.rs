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

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply as _, Response};
use warp::Filter;

use crate::app::AppState;
use crate::http::error::reply;
use crate::http::{authenticate, bearer, query, with_state, ApiError, Query};

pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "v1" / "ws")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(warp::ws().map(Some).or(warp::any().map(|| None)).unify())
        .and(with_state(state))
        .then(upgrade)
        .map(reply)
        .boxed()
}

async fn upgrade(
    header: Option<String>,
    query: Query,
    ws: Option<warp::ws::Ws>,
    state: AppState,
) -> Result<Response, ApiError> {
    let mut query = query?;
    let token = query.remove("token");
    if let Some(name) = query.keys().next() {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("unknown query parameter '{name}': only token is accepted"),
        ));
    }
    // The header wins; `?token=` is for browsers, which cannot set headers on a WebSocket.
    let header = header.or(token.map(|t| format!("Bearer {t}")));
    let user = authenticate(&state, header).await?;
    let Some(ws) = ws else {
        let mut refusal = ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "this endpoint speaks WebSocket: send a WebSocket upgrade request",
        )
        .into_response();
        // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
        refusal
            .headers_mut()
            .insert("upgrade", warp::http::HeaderValue::from_static("websocket"));
        return Ok(refusal);
    };
    let limit = state.config.ws.max_frame_bytes;
    Ok(ws
        .max_frame_size(limit)
        .max_message_size(limit)
        .on_upgrade(move |socket| conn::serve(socket, state, user))
        .into_response())
}
