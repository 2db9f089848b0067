//! `GET /api/v1/rooms/{id}/audit`: a room's audit log, for its owner and admins. (The whole
//! log is the admin API's: `GET /api/v1/admin/audit` in `admin`.)

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::reply;
use super::{bearer, in_room, json, only_params, param_limit, query, with_state, ApiError, Query};
use crate::app::AppState;
use crate::chat::audit::AUDIT_LIMIT;

pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "v1" / "rooms" / String / "audit")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(with_state(state))
        .then(room_audit)
        .map(reply)
        .boxed()
}

async fn room_audit(id: String, auth: Option<String>, q: Query, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let q = q?;
        only_params(&q, &["before", "limit", "action"])?;
        let limit = param_limit(&q, AUDIT_LIMIT)?;
        let page = state
            .chat
            .room_audit(
                actor,
                room,
                q.get("action").map(String::as_str),
                q.get("before").map(String::as_str),
                limit,
            )
            .await?;
        Ok(json(StatusCode::OK, &page))
    })
    .await
}
