//! `/api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}`: add (`PUT`) or remove (`DELETE`) my
//! reaction; both are idempotent and answer the message's reactions.

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::reply;
use super::messages::seq_param;
use super::{bearer, in_room, json, path_param, with_state, ApiError};
use crate::app::AppState;

pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    let add = warp::path!("api" / "v1" / "rooms" / String / "messages" / String / "reactions" / String)
        .and(warp::put())
        .and(bearer())
        .and(with_state(state))
        .then(|id, seq, emoji, auth, state| react(id, seq, emoji, auth, state, true))
        .map(reply);
    let remove = warp::path!("api" / "v1" / "rooms" / String / "messages" / String / "reactions" / String)
        .and(warp::delete())
        .and(bearer())
        .and(with_state(state))
        .then(|id, seq, emoji, auth, state| react(id, seq, emoji, auth, state, false))
        .map(reply);
    add.or(remove).unify().boxed()
}

async fn react(
    id: String,
    seq: String,
    emoji: String,
    auth: Option<String>,
    state: AppState,
    add: bool,
) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let seq = seq_param(&seq)?;
        let reactions = state.chat.react(actor, room, seq, &path_param(&emoji), add).await?;
        Ok(json(StatusCode::OK, &reactions))
    })
    .await
}
