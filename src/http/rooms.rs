//! `/api/v1/rooms` and `/api/v1/dms`: create, list, read, edit and archive rooms; open a
//! direct conversation.

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::reply;
use super::{
    actor, bearer, body, double_option, in_room, json, no_content, param_bool, param_limit, parse_json, query,
    with_state, ApiError, Body, Query,
};
use crate::app::AppState;
use crate::chat::{RoomQuery, RoomUpdate, ROOMS_LIMIT};
use crate::error::Error;

pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    let create = warp::path!("api" / "v1" / "rooms")
        .and(warp::post())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(create)
        .map(reply);
    let list = warp::path!("api" / "v1" / "rooms")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(with_state(state))
        .then(list)
        .map(reply);
    let get = warp::path!("api" / "v1" / "rooms" / String)
        .and(warp::get())
        .and(bearer())
        .and(with_state(state))
        .then(get)
        .map(reply);
    let patch = warp::path!("api" / "v1" / "rooms" / String)
        .and(warp::patch())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(patch)
        .map(reply);
    let archive = warp::path!("api" / "v1" / "rooms" / String)
        .and(warp::delete())
        .and(bearer())
        .and(with_state(state))
        .then(archive)
        .map(reply);
    let dm = warp::path!("api" / "v1" / "dms")
        .and(warp::post())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(direct)
        .map(reply);
    create
        .or(list)
        .unify()
        .or(get)
        .unify()
        .or(patch)
        .unify()
        .or(archive)
        .unify()
        .or(dm)
        .unify()
        .boxed()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateRoom {
    /// Unique, case-insensitively.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    #[schema(max_length = 250)]
    topic: Option<String>,
    /// `public` (the default) or `private`.
    #[schema(pattern = "^(public|private)$")]
    visibility: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchRoom {
    // `null` is told apart from absent so that it can be refused: a room always has a name
    // and a visibility.
    #[serde(default, deserialize_with = "double_option")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    topic: Option<Option<String>>,
    /// `public` or `private`; not `null`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(pattern = "^(public|private)$")]
    visibility: Option<Option<String>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenDirect {
    username: String,
}

async fn create(auth: Option<String>, body: Body, state: AppState) -> Result<Response, ApiError> {
    let actor = actor(&state, auth).await?;
    let req: CreateRoom = parse_json(body)?;
    let room = state
        .chat
        .create_room(&actor, &req.name, req.topic.as_deref(), req.visibility.as_deref(), None)
        .await?;
    Ok(json(StatusCode::CREATED, &room))
}

async fn list(auth: Option<String>, q: Query, state: AppState) -> Result<Response, ApiError> {
    let q = q?;
    let actor = actor(&state, auth).await?;
    let query = RoomQuery {
        mine: param_bool(&q, "mine")?,
        include_archived: param_bool(&q, "include_archived")?,
        q: q.get("q").cloned(),
    };
    let limit = param_limit(&q, ROOMS_LIMIT)?;
    let page = state
        .chat
        .rooms(&actor, &query, q.get("cursor").map(String::as_str), limit)
        .await?;
    Ok(json(StatusCode::OK, &page))
}

async fn get(id: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        Ok(json(StatusCode::OK, &state.chat.room(actor, room).await?))
    })
    .await
}

async fn patch(id: String, auth: Option<String>, body: Body, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let req: PatchRoom = parse_json(body)?;
        let update = RoomUpdate {
            name: req
                .name
                .map(|n| n.ok_or_else(|| Error::invalid("invalid_room_name", "a room's name cannot be removed")))
                .transpose()?,
            topic: req.topic,
            visibility: req
                .visibility
                .map(|v| {
                    v.ok_or_else(|| Error::invalid("invalid_visibility", "visibility must be 'public' or 'private'"))
                })
                .transpose()?,
        };
        Ok(json(
            StatusCode::OK,
            &state.chat.update_room(actor, room, update).await?,
        ))
    })
    .await
}

async fn archive(id: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        state.chat.archive_room(actor, room).await?;
        Ok(no_content())
    })
    .await
}

async fn direct(auth: Option<String>, body: Body, state: AppState) -> Result<Response, ApiError> {
    let actor = actor(&state, auth).await?;
    let req: OpenDirect = parse_json(body)?;
    let (room, created) = state.chat.direct_room(&actor, &req.username).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(json(status, &room))
}
