//! `GET /api/v1/search`: full-text search over the messages the caller may read.

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::reply;
use super::{actor, bearer, json, only_params, param_limit, query, room_id, with_state, ApiError, Query};
use crate::app::AppState;
use crate::chat::{SearchQuery, SEARCH_LIMIT};

pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "v1" / "search")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(with_state(state))
        .then(search)
        .map(reply)
        .boxed()
}

async fn search(auth: Option<String>, q: Query, state: AppState) -> Result<Response, ApiError> {
    let actor = actor(&state, auth).await?;
    let q = q?;
    only_params(&q, &["q", "room_id", "before", "limit"])?;
    // A room id that is not an id names no room, as in a path.
    let room = q.get("room_id").map(|id| room_id(id)).transpose()?;
    let query = SearchQuery {
        q: q.get("q").map(String::as_str).unwrap_or_default(),
        room_id: room,
        before: q.get("before").map(String::as_str),
        limit: param_limit(&q, SEARCH_LIMIT)?,
    };
    Ok(json(StatusCode::OK, &state.chat.search(&actor, &query).await?))
}
